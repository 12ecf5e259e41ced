#include "route/classifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "util/error.h"

namespace reprise::route {
namespace {

// Softmax of `k` scores in place (max subtracted first, so large scores cannot overflow).
void softmax(double* s, size_t k) {
  const double mx = *std::max_element(s, s + k);
  double sum = 0;
  for (size_t c = 0; c < k; ++c) sum += (s[c] = std::exp(s[c] - mx));
  for (size_t c = 0; c < k; ++c) s[c] /= sum;
}

// Largest eigenvalue of Z^T Z / n by power iteration: it bounds the curvature of the loss, so
// 1 / (it / 2 + l2) is a step size gradient descent cannot overshoot with.
double gram_top_eigenvalue(const Matrix& z) {
  std::vector<double> v(z.cols, 1.0 / std::sqrt(static_cast<double>(z.cols))), w(z.cols);
  double lambda = 1;
  for (int it = 0; it < 50; ++it) {
    std::fill(w.begin(), w.end(), 0.0);
    for (size_t r = 0; r < z.rows; ++r) {
      const double* x = z.row(r);
      const double dot = std::inner_product(x, x + z.cols, v.begin(), 0.0);
      for (size_t f = 0; f < z.cols; ++f) w[f] += dot * x[f];
    }
    const double norm = std::sqrt(std::inner_product(w.begin(), w.end(), w.begin(), 0.0));
    if (norm == 0) return 1;
    lambda = norm / static_cast<double>(z.rows);
    for (size_t f = 0; f < z.cols; ++f) v[f] = w[f] / norm;
  }
  return std::max(lambda, 1.0);  // the bias column alone has curvature up to 1 / 2
}

}  // namespace

std::vector<double> SoftmaxModel::probabilities(const double* x) const {
  std::vector<double> s(bias);
  for (size_t c = 0; c < n_classes; ++c) {
    const double* w = weights.data() + c * n_features;
    for (size_t f = 0; f < n_features; ++f) s[c] += w[f] * (x[f] - mean[f]) / scale[f];
  }
  softmax(s.data(), n_classes);
  return s;
}

size_t SoftmaxModel::predict(const double* x) const {
  const auto p = probabilities(x);
  return static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
}

SoftmaxModel fit_softmax(const Matrix& x, const std::vector<size_t>& y, size_t n_classes,
                         const FitOptions& opts) {
  if (x.rows == 0) throw Error("fit_softmax: no training rows");
  if (y.size() != x.rows)
    throw Error(fmt::format("fit_softmax: {} labels for {} rows", y.size(), x.rows));
  if (n_classes == 0) throw Error("fit_softmax: no classes");
  for (size_t l : y)
    if (l >= n_classes)
      throw Error(fmt::format("fit_softmax: label {} outside 0..{}", l, n_classes - 1));
  const size_t n = x.rows, d = x.cols, k = n_classes;
  SoftmaxModel m;
  m.n_classes = k, m.n_features = d;
  m.mean.assign(d, 0.0), m.scale.assign(d, 1.0);
  for (size_t r = 0; r < n; ++r)
    for (size_t f = 0; f < d; ++f) m.mean[f] += x.row(r)[f] / static_cast<double>(n);
  for (size_t f = 0; f < d; ++f) {
    double ss = 0;
    for (size_t r = 0; r < n; ++r) ss += std::pow(x.row(r)[f] - m.mean[f], 2);
    const double sd = std::sqrt(ss / static_cast<double>(n));
    m.scale[f] = sd > 1e-12 ? sd : 1.0;
  }
  Matrix z(n, d);
  for (size_t r = 0; r < n; ++r)
    for (size_t f = 0; f < d; ++f) z.row(r)[f] = (x.row(r)[f] - m.mean[f]) / m.scale[f];

  // Nesterov-accelerated gradient descent on the mean cross-entropy + l2/2 |W|^2, parameters
  // [W | b] packed per class; the step is 1 / (an upper bound of the curvature).
  const double step = std::min(opts.step, 1.0 / (0.5 * gram_top_eigenvalue(z) + opts.l2)) * 1.0;
  const size_t np = k * (d + 1);
  std::vector<double> theta(np, 0.0), prev(np, 0.0), look(np), grad(np), s(k);
  for (int it = 1; it <= opts.iterations; ++it) {
    const double mom = (it - 1.0) / (it + 2.0);
    for (size_t i = 0; i < np; ++i) look[i] = theta[i] + mom * (theta[i] - prev[i]);
    std::fill(grad.begin(), grad.end(), 0.0);
    for (size_t r = 0; r < n; ++r) {
      const double* zr = z.row(r);
      for (size_t c = 0; c < k; ++c) {
        const double* w = look.data() + c * (d + 1);
        s[c] = w[d] + std::inner_product(zr, zr + d, w, 0.0);
      }
      softmax(s.data(), k);
      for (size_t c = 0; c < k; ++c) {
        const double e = (s[c] - (y[r] == c ? 1.0 : 0.0)) / static_cast<double>(n);
        double* g = grad.data() + c * (d + 1);
        for (size_t f = 0; f < d; ++f) g[f] += e * zr[f];
        g[d] += e;
      }
    }
    for (size_t c = 0; c < k; ++c)
      for (size_t f = 0; f < d; ++f) grad[c * (d + 1) + f] += opts.l2 * look[c * (d + 1) + f];
    prev = theta;
    for (size_t i = 0; i < np; ++i) theta[i] = look[i] - step * grad[i];
  }
  m.weights.assign(k * d, 0.0);
  m.bias.assign(k, 0.0);
  for (size_t c = 0; c < k; ++c) {
    std::copy_n(theta.begin() + static_cast<std::ptrdiff_t>(c * (d + 1)), d,
                m.weights.begin() + static_cast<std::ptrdiff_t>(c * d));
    m.bias[c] = theta[c * (d + 1) + d];
  }
  return m;
}

std::vector<size_t> cross_validate(const Matrix& x, const std::vector<size_t>& y, size_t n_classes,
                                   int folds, uint64_t seed, const FitOptions& opts) {
  if (folds < 2 || static_cast<size_t>(folds) > x.rows)
    throw Error(fmt::format("cross-validation needs 2..{} folds (one item each at least), got {}",
                            x.rows, folds));
  std::vector<size_t> order(x.rows);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<size_t> fold_of(x.rows), out(x.rows);
  for (size_t p = 0; p < order.size(); ++p) fold_of[order[p]] = p % static_cast<size_t>(folds);
  for (int f = 0; f < folds; ++f) {
    Matrix train;
    train.cols = x.cols;
    std::vector<size_t> ty;
    for (size_t r = 0; r < x.rows; ++r)
      if (fold_of[r] != static_cast<size_t>(f)) {
        train.v.insert(train.v.end(), x.row(r), x.row(r) + x.cols);
        ty.push_back(y[r]);
        ++train.rows;
      }
    const SoftmaxModel m = fit_softmax(train, ty, n_classes, opts);
    for (size_t r = 0; r < x.rows; ++r)
      if (fold_of[r] == static_cast<size_t>(f)) out[r] = m.predict(x.row(r));
  }
  return out;
}

}  // namespace reprise::route
