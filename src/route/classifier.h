// Multinomial logistic regression (softmax regression) with an L2 penalty, small and exact
// enough for a router: a few hundred items, a few hundred features, a handful of classes.
//
// Features are standardised (zero mean, unit variance per column, from the training rows) before
// fitting, so one penalty suits every column and gradient descent converges at one step size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace reprise::route {

// Row-major [rows, cols] matrix of features.
struct Matrix {
  size_t rows = 0, cols = 0;
  std::vector<double> v;  // rows * cols

  Matrix() = default;
  Matrix(size_t r, size_t c) : rows(r), cols(c), v(r * c, 0.0) {}
  double* row(size_t r) { return v.data() + r * cols; }
  const double* row(size_t r) const { return v.data() + r * cols; }
};

struct FitOptions {
  double l2 = 1e-2;      // penalty lambda * |W|^2 / 2 (bias not penalised), per item
  int iterations = 500;  // full-batch gradient steps
  double step = 0.5;     // learning rate on standardised features
};

struct SoftmaxModel {
  size_t n_classes = 0, n_features = 0;
  std::vector<double> mean, scale;  // standardisation: z = (x - mean) / scale, per feature
  std::vector<double> weights;      // [n_classes, n_features] row-major
  std::vector<double> bias;         // [n_classes]

  // Class probabilities of one raw (unstandardised) feature row of n_features values.
  std::vector<double> probabilities(const double* x) const;
  // The most probable class (the lowest index among ties).
  size_t predict(const double* x) const;
};

// Fits on rows of `x` with labels y[r] in [0, n_classes). A constant column gets scale 1.
// Throws Error on a label out of range, mismatched sizes or no rows.
SoftmaxModel fit_softmax(const Matrix& x, const std::vector<size_t>& y, size_t n_classes,
                         const FitOptions& opts = {});

// k-fold cross-validation: rows go to fold (position in a seeded shuffle) mod k; each fold is
// predicted by a model fitted on the others. Returns the out-of-fold prediction of every row.
// Throws Error when k < 2 or k > rows.
std::vector<size_t> cross_validate(const Matrix& x, const std::vector<size_t>& y, size_t n_classes,
                                   int folds, uint64_t seed, const FitOptions& opts = {});

}  // namespace reprise::route
