// Paired statistics for comparing two runs item by item (and for the layer scan).
//
// Every function takes the per-item scores of run A and run B in the same item order; the
// difference is always B - A. Functions throw reprise::Error when the inputs do not fit (unequal
// lengths, a 0/1 test on other values), never on merely degenerate data: those return NaN where a
// quantity is undefined and say so in their comment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace reprise::eval {

// --- Descriptive --------------------------------------------------------------------------------

double mean(std::span<const double> x);  // NaN for an empty span
// Sample standard deviation (n - 1 in the denominator); NaN for fewer than 2 values.
double sample_stddev(std::span<const double> x);
// Standard error of the mean, s / sqrt(n); NaN for fewer than 2 values.
double standard_error(std::span<const double> x);

// --- Special functions --------------------------------------------------------------------------

// Regularized incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1].
double incomplete_beta(double x, double a, double b);

// Two-sided p-value of Student's t distribution: P(|T| >= |t|) with df degrees of freedom (> 0).
double student_t_two_sided_p(double t, double df);

// P(X <= k) for X ~ Binomial(n, p), summed exactly term by term in log space.
double binomial_cdf(int64_t k, int64_t n, double p);

// --- Paired tests -------------------------------------------------------------------------------

struct McNemarResult {
  int64_t a_only = 0;  // items A got right (1) and B wrong (0)
  int64_t b_only = 0;  // items B got right and A wrong
  double p_value = 1.0;
};

// Exact McNemar test (the sign test on discordant pairs): under H0 a discordant item is equally
// likely to favour either run, so min(a_only, b_only) is Binomial(a_only + b_only, 1/2);
// p = min(1, 2 P(X <= min)). p = 1 when there are no discordant items.
double mcnemar_exact_p(int64_t a_only, int64_t b_only);
// From per-item 0/1 scores; throws Error if a value is not 0 or 1.
McNemarResult mcnemar_exact(std::span<const double> a, std::span<const double> b);

struct TTestResult {
  double mean_diff = 0;  // mean of B - A
  double t = 0;          // NaN when the differences have no spread (see p_value)
  double df = 0;         // n - 1
  // Two-sided. With fewer than 2 items: NaN. With zero spread: 1 if every difference is 0,
  // else 0 (the runs differ by the same amount on every item).
  double p_value = 1.0;
};

// Paired t-test on d = B - A with exact Student-t p-values.
TTestResult paired_t_test(std::span<const double> a, std::span<const double> b);

// Paired t-test on d = B - A when items come in clusters (cluster[i] in 0..G-1: items sharing a
// passage or story are not independent): t = mean(d) / SE with the cluster-robust (CR1, "sandwich")
// standard error SE^2 = G/(G-1) * sum_g (sum_{i in g} (d_i - mean d))^2 / n^2 and G - 1 degrees
// of freedom. With every item its own cluster it is the paired t-test. df = G - 1; with fewer
// than 2 clusters: NaN.
TTestResult cluster_paired_t_test(std::span<const double> a, std::span<const double> b,
                                  std::span<const size_t> cluster);

// The paired test reprise uses for one metric: exact McNemar when `binary` (0/1 scores), else the
// paired t-test. Two-sided p of B vs A; 1 where the test is undefined (fewer than 2 items).
double paired_p_value(std::span<const double> a, std::span<const double> b, bool binary);
// The same when items share units (`cluster`: dense ids 0..G-1 with G < n): the cluster-robust
// t-test for either kind of metric, since neither McNemar's test nor the item-level t-test allows
// for items that move together. Empty `cluster` or G = n (one unit per item): paired_p_value.
double paired_p_value(std::span<const double> a, std::span<const double> b, bool binary,
                      std::span<const size_t> cluster);

// --- Bootstrap ----------------------------------------------------------------------------------

struct BootstrapOptions {
  int resamples = 10000;
  double level = 0.95;   // two-sided confidence level
  uint64_t seed = 1234;  // the same seed and data always give the same interval
};

struct Interval {
  double lo = 0, hi = 0;
};

// Percentile bootstrap CI for the mean of d: resamples n values of d with replacement,
// `resamples` times, and takes the (1-level)/2 and (1+level)/2 order statistics of the resampled
// means (lower: index floor(q R), upper: index ceil(q R) - 1, 0-based in the sorted means).
// NaN bounds for an empty span.
Interval bootstrap_mean_ci(std::span<const double> d, const BootstrapOptions& opts = {});
// The same for d = B - A (pairs stay together: one resample draws whole items).
Interval paired_bootstrap_ci(std::span<const double> a, std::span<const double> b,
                             const BootstrapOptions& opts = {});

struct ClusterBootstrap {
  Interval ci;
  double se = 0;  // standard deviation of the resampled means (the bootstrap standard error)
};

// Cluster bootstrap for the mean of d when items share a unit (a passage, a story, a twin
// pair): cluster[i] in [0, C) names item i's unit (every id below C used), and each resample draws
// C whole units with replacement; its mean is the sum of the drawn units' d over their item count.
// With every item its own unit, numbered 0..n-1 in order, the interval equals bootstrap_mean_ci's
// exactly. Throws Error when the lengths differ or an id below C is unused; NaN for an empty d.
ClusterBootstrap cluster_bootstrap_mean_ci(std::span<const double> d,
                                           std::span<const size_t> cluster,
                                           const BootstrapOptions& opts = {});

// --- Power --------------------------------------------------------------------------------------

// Inverse of the standard normal CDF for p in (0, 1) (Acklam's rational approximation refined by
// one Halley step; |error| < 1e-12). Throws Error outside (0, 1).
double normal_quantile(double p);

// The smallest true mean difference a two-sided test at level `alpha` detects with probability
// `power`, given the standard error `se` of the estimated difference (normal approximation):
// (z_{1-alpha/2} + z_{power}) * se.
double min_detectable_effect(double se, double alpha, double power = 0.8);

// --- Rank correlation ---------------------------------------------------------------------------

// Ranks 1..n of `v`, ties given their mean rank.
std::vector<double> average_ranks(const std::vector<double>& v);
// Pearson correlation; NaN when either side is constant.
double pearson(const std::vector<double>& a, const std::vector<double>& b);
// Spearman's rho with average ranks for ties; NaN when either side is constant, the sizes differ
// or n < 2.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// --- Multiple comparisons -----------------------------------------------------------------------

// Holm's step-down adjustment (controls the family-wise error rate). Adjusted p-values in the
// input order; throws Error for a value outside [0, 1] or NaN.
std::vector<double> holm_adjust(std::span<const double> p);
// Benjamini-Hochberg step-up adjustment (controls the false discovery rate).
std::vector<double> bh_adjust(std::span<const double> p);

}  // namespace reprise::eval
