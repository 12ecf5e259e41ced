#include "eval/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "eval/rng.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_paired(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size())
    throw Error(
        fmt::format("paired scores differ in length ({} and {} items)", a.size(), b.size()));
}

// Continued fraction for the incomplete beta (the even/odd terms d_2m and d_2m+1 of the
// standard expansion), evaluated with the modified Lentz method. Converges quickly for
// x < (a + 1) / (a + b + 2); the caller uses the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) otherwise.
double beta_continued_fraction(double x, double a, double b) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double f = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    // Even step: d_2m = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + num * d;
    c = 1.0 + num / c;
    if (std::fabs(d) < kTiny) d = kTiny;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    f *= d * c;
    // Odd step: d_2m+1 = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + num * d;
    c = 1.0 + num / c;
    if (std::fabs(d) < kTiny) d = kTiny;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    f *= delta;
    if (std::fabs(delta - 1.0) < kEps) break;
  }
  return f;
}

}  // namespace

double mean(std::span<const double> x) {
  if (x.empty()) return kNaN;
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

double sample_stddev(std::span<const double> x) {
  if (x.size() < 2) return kNaN;
  const double m = mean(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(x.size() - 1));
}

double standard_error(std::span<const double> x) {
  if (x.size() < 2) return kNaN;
  return sample_stddev(x) / std::sqrt(static_cast<double>(x.size()));
}

double incomplete_beta(double x, double a, double b) {
  if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
    throw Error(fmt::format("incomplete beta: bad arguments x={} a={} b={}", x, a, b));
  if (x == 0) return 0;
  if (x == 1) return 1;
  // x^a (1-x)^b / B(a, b), in logs to survive large a and b.
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0))
    return std::exp(log_front) * beta_continued_fraction(x, a, b) / a;
  return 1.0 - std::exp(log_front) * beta_continued_fraction(1.0 - x, b, a) / b;
}

double student_t_two_sided_p(double t, double df) {
  if (!(df > 0)) throw Error(fmt::format("t distribution: degrees of freedom {} <= 0", df));
  if (std::isnan(t)) return kNaN;
  if (std::isinf(t)) return 0.0;
  // P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
  return incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
}

double binomial_cdf(int64_t k, int64_t n, double p) {
  if (n < 0 || !(p >= 0) || !(p <= 1))
    throw Error(fmt::format("binomial: bad arguments n={} p={}", n, p));
  if (k < 0) return 0.0;
  if (k >= n) return 1.0;
  if (p == 0) return 1.0;
  if (p == 1) return 0.0;
  const double lp = std::log(p), lq = std::log1p(-p);
  double sum = 0;
  for (int64_t i = 0; i <= k; ++i) {
    const double log_choose =
        std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0);
    sum += std::exp(log_choose + i * lp + (n - i) * lq);
  }
  return std::min(sum, 1.0);
}

double mcnemar_exact_p(int64_t a_only, int64_t b_only) {
  if (a_only < 0 || b_only < 0) throw Error("McNemar: negative counts");
  const int64_t n = a_only + b_only;
  if (n == 0) return 1.0;
  return std::min(1.0, 2.0 * binomial_cdf(std::min(a_only, b_only), n, 0.5));
}

McNemarResult mcnemar_exact(std::span<const double> a, std::span<const double> b) {
  check_paired(a, b);
  McNemarResult r;
  for (size_t i = 0; i < a.size(); ++i) {
    for (double v : {a[i], b[i]})
      if (v != 0.0 && v != 1.0)
        throw Error(fmt::format("McNemar needs 0/1 scores; item {} has {}", i, v));
    if (a[i] == 1.0 && b[i] == 0.0) ++r.a_only;
    if (a[i] == 0.0 && b[i] == 1.0) ++r.b_only;
  }
  r.p_value = mcnemar_exact_p(r.a_only, r.b_only);
  return r;
}

namespace {

// d = B - A, item by item.
std::vector<double> differences(std::span<const double> a, std::span<const double> b) {
  check_paired(a, b);
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
  return d;
}

// The t-test of a mean difference with standard error `se` on `df` degrees of freedom: NaN
// when df < 1; with no spread (se 0), p = 1 if the mean is 0, else 0.
TTestResult t_test(double mean_diff, double se, double df) {
  TTestResult r;
  r.mean_diff = mean_diff;
  if (df < 1) {
    r.t = r.p_value = kNaN;
    return r;
  }
  r.df = df;
  if (!(se > 0)) {
    r.t = kNaN;
    r.p_value = mean_diff == 0 ? 1.0 : 0.0;
    return r;
  }
  r.t = mean_diff / se;
  r.p_value = student_t_two_sided_p(r.t, df);
  return r;
}

}  // namespace

TTestResult paired_t_test(std::span<const double> a, std::span<const double> b) {
  const std::vector<double> d = differences(a, b);
  const double df = d.size() < 2 ? 0 : static_cast<double>(d.size() - 1);
  return t_test(mean(d), df > 0 ? standard_error(d) : kNaN, df);
}

double paired_p_value(std::span<const double> a, std::span<const double> b, bool binary) {
  const double p = binary ? mcnemar_exact(a, b).p_value : paired_t_test(a, b).p_value;
  return std::isnan(p) ? 1.0 : p;
}

TTestResult cluster_paired_t_test(std::span<const double> a, std::span<const double> b,
                                  std::span<const size_t> cluster) {
  const std::vector<double> d = differences(a, b);
  if (cluster.size() != d.size())
    throw Error(fmt::format("cluster ids: {} for {} items", cluster.size(), d.size()));
  const double mean_diff = mean(d);
  const size_t g = d.empty() ? 0 : *std::max_element(cluster.begin(), cluster.end()) + 1;
  std::vector<double> sum(g, 0.0);  // per cluster: the sum of d_i - mean(d)
  std::vector<bool> used(g, false);
  for (size_t i = 0; i < d.size(); ++i) {
    sum[cluster[i]] += d[i] - mean_diff;
    used[cluster[i]] = true;
  }
  const auto clusters = static_cast<double>(std::count(used.begin(), used.end(), true));
  if (clusters < 2) return t_test(mean_diff, kNaN, 0);
  double ss = 0;
  for (double s : sum) ss += s * s;
  const double se = std::sqrt(clusters / (clusters - 1) * ss) / static_cast<double>(d.size());
  return t_test(mean_diff, se, clusters - 1);
}

double paired_p_value(std::span<const double> a, std::span<const double> b, bool binary,
                      std::span<const size_t> cluster) {
  const bool shared_units =
      !cluster.empty() && *std::max_element(cluster.begin(), cluster.end()) + 1 < a.size();
  if (!shared_units) return paired_p_value(a, b, binary);
  const double p = cluster_paired_t_test(a, b, cluster).p_value;
  return std::isnan(p) ? 1.0 : p;
}

namespace {

void check_bootstrap_options(const BootstrapOptions& opts) {
  if (opts.resamples < 1) throw Error("bootstrap: resamples must be >= 1");
  if (!(opts.level > 0 && opts.level < 1)) throw Error("bootstrap: level must be in (0, 1)");
}

// The percentile interval of resampled means (sorted in place).
Interval percentile_interval(std::vector<double>& means, double level) {
  std::sort(means.begin(), means.end());
  const double R = static_cast<double>(means.size());
  const double q_lo = (1.0 - level) / 2.0, q_hi = (1.0 + level) / 2.0;
  const auto lo = static_cast<size_t>(std::floor(q_lo * R));
  const auto hi = static_cast<size_t>(std::max(1.0, std::ceil(q_hi * R)) - 1.0);
  return {means[std::min(lo, means.size() - 1)], means[std::min(hi, means.size() - 1)]};
}

}  // namespace

Interval bootstrap_mean_ci(std::span<const double> d, const BootstrapOptions& opts) {
  check_bootstrap_options(opts);
  if (d.empty()) return {kNaN, kNaN};
  const size_t n = d.size();
  Rng rng(opts.seed);
  std::vector<double> means(opts.resamples);
  for (double& m : means) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += d[rng.below(n)];
    m = s / static_cast<double>(n);
  }
  return percentile_interval(means, opts.level);
}

ClusterBootstrap cluster_bootstrap_mean_ci(std::span<const double> d,
                                           std::span<const size_t> cluster,
                                           const BootstrapOptions& opts) {
  check_bootstrap_options(opts);
  if (d.size() != cluster.size())
    throw Error(
        fmt::format("cluster bootstrap: {} values but {} cluster ids", d.size(), cluster.size()));
  if (d.empty()) return {{kNaN, kNaN}, kNaN};
  const size_t n_clusters = *std::max_element(cluster.begin(), cluster.end()) + 1;
  if (n_clusters > d.size())
    throw Error(fmt::format("cluster bootstrap: cluster id {} with only {} items", n_clusters - 1,
                            d.size()));
  std::vector<double> sum(n_clusters, 0.0);
  std::vector<double> count(n_clusters, 0.0);
  for (size_t i = 0; i < d.size(); ++i) sum[cluster[i]] += d[i], count[cluster[i]] += 1;
  for (size_t k = 0; k < n_clusters; ++k)
    if (count[k] == 0) throw Error(fmt::format("cluster bootstrap: cluster id {} has no items", k));
  Rng rng(opts.seed);
  std::vector<double> means(opts.resamples);
  for (double& m : means) {
    double s = 0, c = 0;
    for (size_t k = 0; k < n_clusters; ++k) {
      const size_t u = rng.below(n_clusters);
      s += sum[u], c += count[u];
    }
    m = s / c;  // c > 0: every unit has items
  }
  ClusterBootstrap out;
  out.se = sample_stddev(means);
  out.ci = percentile_interval(means, opts.level);
  return out;
}

double normal_quantile(double p) {
  if (!(p > 0 && p < 1)) throw Error(fmt::format("normal quantile: p = {} is not in (0, 1)", p));
  // Acklam's coefficients: central region and both tails.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double p_low = 0.02425;
  double x;
  if (p < p_low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - p_low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step on Phi(x) - p brings the 1e-9 approximation to machine precision.
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double min_detectable_effect(double se, double alpha, double power) {
  if (!(alpha > 0 && alpha < 1) || !(power > 0 && power < 1))
    throw Error(fmt::format("minimum detectable effect: alpha {} and power {} must be in (0, 1)",
                            alpha, power));
  return (normal_quantile(1 - alpha / 2) + normal_quantile(power)) * se;
}

Interval paired_bootstrap_ci(std::span<const double> a, std::span<const double> b,
                             const BootstrapOptions& opts) {
  check_paired(a, b);
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
  return bootstrap_mean_ci(d, opts);
}

namespace {

void check_p_values(std::span<const double> p) {
  for (double v : p)
    if (!(v >= 0 && v <= 1)) throw Error(fmt::format("p-value {} is not in [0, 1]", v));
}

// Indices of p in ascending order of value (stable, so ties keep their input order).
std::vector<size_t> ascending(std::span<const double> p) {
  std::vector<size_t> idx(p.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
  return idx;
}

}  // namespace

std::vector<double> holm_adjust(std::span<const double> p) {
  check_p_values(p);
  const size_t m = p.size();
  std::vector<double> out(m);
  double running = 0;  // adjusted values must not decrease along the sorted order
  const auto idx = ascending(p);
  for (size_t j = 0; j < m; ++j) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - j) * p[idx[j]]));
    out[idx[j]] = running;
  }
  return out;
}

std::vector<double> bh_adjust(std::span<const double> p) {
  check_p_values(p);
  const size_t m = p.size();
  std::vector<double> out(m);
  double running = 1.0;  // from the largest p down, adjusted values must not increase
  const auto idx = ascending(p);
  for (size_t j = m; j-- > 0;) {
    running = std::min(running, static_cast<double>(m) / static_cast<double>(j + 1) * p[idx[j]]);
    out[idx[j]] = std::min(1.0, running);
  }
  return out;
}

std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t s = 0; s < order.size();) {
    size_t e = s;
    while (e + 1 < order.size() && v[order[e + 1]] == v[order[s]]) ++e;
    const double avg = (static_cast<double>(s) + static_cast<double>(e)) / 2.0 + 1.0;
    for (size_t k = s; k <= e; ++k) r[order[k]] = avg;
    s = e + 1;
  }
  return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    sab += (a[k] - ma) * (b[k] - mb);
    saa += (a[k] - ma) * (a[k] - ma);
    sbb += (b[k] - mb) * (b[k] - mb);
  }
  if (saa == 0 || sbb == 0) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  return pearson(average_ranks(a), average_ranks(b));
}

}  // namespace reprise::eval
