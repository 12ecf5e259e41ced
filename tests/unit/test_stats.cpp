// Statistics against closed forms and hand-computed values, and bootstrap coverage by
// simulation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "eval/rng.h"
#include "eval/stats.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

TEST(Stats, SplitMix64IsTheReferenceSequence) {
  // The published SplitMix64 outputs for seed 0: the generator behind every probe and bootstrap
  // must not depend on the platform's standard library.
  Rng r(0);
  EXPECT_EQ(r.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(r.next(), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(r.next(), 0x06C45D188009454Full);
}

TEST(Stats, RngBelowStaysInRangeAndCoversIt) {
  Rng r(7);
  std::vector<int> seen(6, 0);
  for (int k = 0; k < 6000; ++k) {
    const uint64_t v = r.below(6);
    ASSERT_LT(v, 6u);
    ++seen[v];
  }
  for (int c : seen) EXPECT_NEAR(c, 1000, 150);
}

TEST(Stats, MeanAndStandardError) {
  const std::vector<double> x = {2, 4, 4, 4, 5, 5, 7, 9};  // mean 5, sum of squares 32
  EXPECT_DOUBLE_EQ(mean(x), 5.0);
  EXPECT_NEAR(sample_stddev(x), std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_NEAR(standard_error(x), std::sqrt(32.0 / 7.0) / std::sqrt(8.0), 1e-12);
  EXPECT_TRUE(std::isnan(standard_error(std::vector<double>{1.0})));
  EXPECT_TRUE(std::isnan(mean(std::vector<double>{})));
}

TEST(Stats, IncompleteBetaClosedForms) {
  EXPECT_NEAR(incomplete_beta(0.3, 2.5, 1.0), std::pow(0.3, 2.5), 1e-12);      // x^a
  EXPECT_NEAR(incomplete_beta(0.2, 1.0, 3.0), 1.0 - std::pow(0.8, 3), 1e-12);  // 1-(1-x)^b
  EXPECT_NEAR(incomplete_beta(0.5, 7.3, 7.3), 0.5, 1e-12);                     // symmetry
  // Integer a, b: I_x(a, b) = P(Binomial(a + b - 1, x) >= a); for x = 0.4, a = 2, b = 3:
  // 6(.16)(.36) + 4(.064)(.6) + .0256 = 0.5248.
  EXPECT_NEAR(incomplete_beta(0.4, 2.0, 3.0), 0.5248, 1e-12);
  EXPECT_NEAR(incomplete_beta(0.37, 3.2, 11.5) + incomplete_beta(0.63, 11.5, 3.2), 1.0, 1e-12);
  EXPECT_EQ(incomplete_beta(0.0, 2, 3), 0.0);
  EXPECT_EQ(incomplete_beta(1.0, 2, 3), 1.0);
  EXPECT_THROW(incomplete_beta(1.5, 2, 3), Error);
  EXPECT_THROW(incomplete_beta(0.5, 0, 3), Error);
}

TEST(Stats, StudentTMatchesClosedForms) {
  // df = 1 is the Cauchy distribution: P(|T| >= t) = 1 - (2/pi) atan(t).
  EXPECT_NEAR(student_t_two_sided_p(1.0, 1), 0.5, 1e-12);
  EXPECT_NEAR(student_t_two_sided_p(3.0, 1), 0.20483276469913336, 1e-12);
  // df = 2: 1 - t / sqrt(2 + t^2).
  EXPECT_NEAR(student_t_two_sided_p(2.0, 2), 1.0 - 2.0 / std::sqrt(6.0), 1e-12);
  EXPECT_NEAR(student_t_two_sided_p(-2.0, 2), 1.0 - 2.0 / std::sqrt(6.0), 1e-12);
  // df = 4: 1 - t (t^2 + 6) / (t^2 + 4)^(3/2).
  EXPECT_NEAR(student_t_two_sided_p(2.0, 4), 1.0 - 20.0 / std::pow(8.0, 1.5), 1e-12);
  // Huge df approaches the normal: |z| = 1.959964 leaves 5%.
  EXPECT_NEAR(student_t_two_sided_p(1.959963984540054, 1e8), 0.05, 1e-6);
  EXPECT_DOUBLE_EQ(student_t_two_sided_p(0.0, 5), 1.0);
}

TEST(Stats, BinomialCdf) {
  EXPECT_NEAR(binomial_cdf(2, 10, 0.5), 56.0 / 1024.0, 1e-15);  // 1 + 10 + 45
  EXPECT_NEAR(binomial_cdf(0, 3, 0.2), 0.512, 1e-15);
  EXPECT_EQ(binomial_cdf(10, 10, 0.5), 1.0);
  EXPECT_EQ(binomial_cdf(-1, 10, 0.5), 0.0);
}

TEST(Stats, ExactMcNemarOnKnownTables) {
  // Discordant counts b = 2, c = 8: p = 2 P(X <= 2), X ~ Bin(10, 1/2) = 2 * 56/1024.
  EXPECT_NEAR(mcnemar_exact_p(2, 8), 0.109375, 1e-15);
  EXPECT_NEAR(mcnemar_exact_p(8, 2), 0.109375, 1e-15);
  EXPECT_NEAR(mcnemar_exact_p(0, 5), 0.0625, 1e-15);       // 2 / 32
  EXPECT_NEAR(mcnemar_exact_p(1, 9), 22.0 / 1024, 1e-15);  // 2 (1 + 10) / 1024
  EXPECT_EQ(mcnemar_exact_p(3, 3), 1.0);
  EXPECT_EQ(mcnemar_exact_p(0, 0), 1.0);

  // The same table from per-item scores, with concordant items that must not count:
  // 2 items only A right, 8 only B right, 5 both right, 5 both wrong.
  std::vector<double> a, b;
  auto add = [&](double x, double y, int n) {
    for (int k = 0; k < n; ++k) a.push_back(x), b.push_back(y);
  };
  add(1, 0, 2);
  add(0, 1, 8);
  add(1, 1, 5);
  add(0, 0, 5);
  const McNemarResult r = mcnemar_exact(a, b);
  EXPECT_EQ(r.a_only, 2);
  EXPECT_EQ(r.b_only, 8);
  EXPECT_NEAR(r.p_value, 0.109375, 1e-15);

  EXPECT_THROW(mcnemar_exact(std::vector<double>{0.5}, std::vector<double>{1}), Error);
  EXPECT_THROW(mcnemar_exact(std::vector<double>{0, 1}, std::vector<double>{1}), Error);
}

TEST(Stats, PairedTTestByHand) {
  // d = b - a = (1, 2, 0, 3, 1): mean 1.4, variance 5.2 / 4 = 1.3, t = 1.4 / sqrt(1.3 / 5).
  const std::vector<double> a = {1, 2, 3, 4, 5}, b = {2, 4, 3, 7, 6};
  const TTestResult r = paired_t_test(a, b);
  const double t = 1.4 / std::sqrt(1.3 / 5);
  EXPECT_NEAR(r.mean_diff, 1.4, 1e-12);
  EXPECT_NEAR(r.t, t, 1e-12);
  EXPECT_EQ(r.df, 4);
  EXPECT_NEAR(r.p_value, 1.0 - t * (t * t + 6) / std::pow(t * t + 4, 1.5), 1e-12);  // df = 4
  // Swapping the runs flips the sign, not the p-value.
  const TTestResult s = paired_t_test(b, a);
  EXPECT_NEAR(s.t, -t, 1e-12);
  EXPECT_NEAR(s.p_value, r.p_value, 1e-12);
}

TEST(Stats, PairedTTestDegenerateCases) {
  const std::vector<double> x = {1, 2, 3};
  EXPECT_EQ(paired_t_test(x, x).p_value, 1.0);  // no difference at all
  const std::vector<double> y = {2, 3, 4};
  EXPECT_EQ(paired_t_test(x, y).p_value, 0.0);  // the same shift on every item
  EXPECT_TRUE(std::isnan(paired_t_test(std::vector<double>{1}, std::vector<double>{2}).p_value));
}

TEST(Stats, HolmAndBenjaminiHochbergByHand) {
  const std::vector<double> p = {0.01, 0.04, 0.03, 0.005};
  // Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running
  // maximum 0.02, 0.03, 0.06, 0.06; back in input order:
  const auto holm = holm_adjust(p);
  const std::vector<double> want_holm = {0.03, 0.06, 0.06, 0.02};
  // BH: sorted times 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04 -> running minimum from the top.
  const auto bh = bh_adjust(p);
  const std::vector<double> want_bh = {0.02, 0.04, 0.04, 0.02};
  for (size_t k = 0; k < p.size(); ++k) {
    EXPECT_NEAR(holm[k], want_holm[k], 1e-15) << k;
    EXPECT_NEAR(bh[k], want_bh[k], 1e-15) << k;
  }
  EXPECT_EQ(holm_adjust(std::vector<double>{0.6, 0.7})[1], 1.0);  // capped at 1
  EXPECT_TRUE(holm_adjust(std::vector<double>{}).empty());
  EXPECT_THROW(holm_adjust(std::vector<double>{0.1, 1.5}), Error);
  EXPECT_THROW(bh_adjust(std::vector<double>{std::nan("")}), Error);
}

TEST(Stats, BootstrapIsSeededAndExactOnConstants) {
  std::vector<double> d;
  Rng r(3);
  for (int k = 0; k < 40; ++k) d.push_back(r.normal());
  BootstrapOptions o;
  o.resamples = 2000;
  const Interval x = bootstrap_mean_ci(d, o), y = bootstrap_mean_ci(d, o);
  EXPECT_EQ(x.lo, y.lo);
  EXPECT_EQ(x.hi, y.hi);
  EXPECT_LT(x.lo, mean(d));
  EXPECT_GT(x.hi, mean(d));
  o.seed = 99;
  const Interval z = bootstrap_mean_ci(d, o);
  EXPECT_NE(x.lo, z.lo);
  const Interval c = bootstrap_mean_ci(std::vector<double>(10, 0.25), o);
  EXPECT_EQ(c.lo, 0.25);
  EXPECT_EQ(c.hi, 0.25);
  // Pairs: the CI of B - A is the CI of the differences.
  const std::vector<double> a = {0, 1, 0, 1}, b = {1, 1, 0, 1};
  const Interval p = paired_bootstrap_ci(a, b, o);
  EXPECT_GE(p.lo, 0.0);
  EXPECT_LE(p.hi, 1.0);
}

TEST(Stats, BootstrapCoverageIsNearNinetyFivePercent) {
  // 500 simulated experiments, each 50 paired differences ~ N(0.3, 1): the 95% percentile
  // bootstrap interval should contain the true mean about 95% of the time (the percentile
  // method runs slightly below nominal at n = 50). Seeded, so the count is reproducible.
  const double mu = 0.3;
  Rng data(2024);
  BootstrapOptions o;
  o.resamples = 1000;
  int covered = 0;
  const int experiments = 500;
  for (int e = 0; e < experiments; ++e) {
    std::vector<double> d(50);
    for (double& v : d) v = mu + data.normal();
    o.seed = 1000 + e;
    const Interval ci = bootstrap_mean_ci(d, o);
    covered += ci.lo <= mu && mu <= ci.hi;
  }
  const double coverage = static_cast<double>(covered) / experiments;
  EXPECT_GT(coverage, 0.915) << coverage;
  EXPECT_LT(coverage, 0.975) << coverage;
}

TEST(Stats, ClusterBootstrapReducesToTheItemBootstrapAndWidensForSharedUnits) {
  std::vector<double> d;
  Rng r(5);
  for (int k = 0; k < 30; ++k) d.push_back(r.normal());
  BootstrapOptions o;
  o.seed = 42;
  std::vector<size_t> own(d.size());
  for (size_t i = 0; i < own.size(); ++i) own[i] = i;
  const auto items = bootstrap_mean_ci(d, o);
  const auto units = cluster_bootstrap_mean_ci(d, own, o);
  EXPECT_EQ(units.ci.lo, items.lo);
  EXPECT_EQ(units.ci.hi, items.hi);
  // Every value twice, in pairs: 60 items but only 30 units.
  std::vector<double> twice;
  std::vector<size_t> pair;
  for (size_t i = 0; i < d.size(); ++i)
    twice.insert(twice.end(), {d[i], d[i]}), pair.insert(pair.end(), {i, i});
  const auto naive = bootstrap_mean_ci(twice, o);
  const auto by_pair = cluster_bootstrap_mean_ci(twice, pair, o);
  EXPECT_GT(by_pair.ci.hi - by_pair.ci.lo, 1.25 * (naive.hi - naive.lo));
  EXPECT_NEAR(by_pair.se, standard_error(d), 0.2 * standard_error(d));
  EXPECT_THROW(cluster_bootstrap_mean_ci(d, std::vector<size_t>(3, 0), o), Error);
  EXPECT_THROW(cluster_bootstrap_mean_ci(std::vector<double>{1, 2}, std::vector<size_t>{0, 2}, o),
               Error);
}

TEST(Stats, NormalQuantileAndMinimumDetectableEffect) {
  // Reference values of the standard normal quantile (R's qnorm, 15 digits).
  EXPECT_NEAR(normal_quantile(0.975), 1.95996398454005, 1e-12);
  EXPECT_NEAR(normal_quantile(0.8), 0.841621233572914, 1e-12);
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-15);
  EXPECT_NEAR(normal_quantile(1e-6), -4.75342430882290, 1e-10);
  EXPECT_NEAR(normal_quantile(0.99999), 4.26489079392384, 1e-10);
  EXPECT_THROW(normal_quantile(0), Error);
  EXPECT_THROW(normal_quantile(1), Error);
  // alpha 0.05, power 0.8: (1.96 + 0.84) SE, the textbook 2.80.
  EXPECT_NEAR(min_detectable_effect(0.01, 0.05, 0.8), 0.0280158521811, 1e-12);
}

TEST(Stats, PairedPValueChoosesTheTestByMetricKind) {
  const std::vector<double> a = {1, 1, 0, 0, 1, 0}, b = {0, 1, 1, 1, 1, 1};
  EXPECT_EQ(paired_p_value(a, b, true), mcnemar_exact(a, b).p_value);
  EXPECT_EQ(paired_p_value(a, b, false), paired_t_test(a, b).p_value);
  EXPECT_EQ(paired_p_value(std::vector<double>{1.0}, std::vector<double>{2.0}, false), 1.0);
}

TEST(Stats, ClusterRobustTTestByHand) {
  // d = 1, 2, 3, 4 in two clusters {1, 2} and {3, 4}: mean 2.5, cluster sums of d - mean -2 and
  // +2, SE^2 = 2/1 * 8 / 16 = 1, t = 2.5 on 1 df (Cauchy): p = 1 - 2 atan(2.5) / pi.
  const std::vector<double> a(4, 0.0), b = {1, 2, 3, 4};
  const std::vector<size_t> two = {0, 0, 1, 1};
  const TTestResult r = cluster_paired_t_test(a, b, two);
  EXPECT_DOUBLE_EQ(r.mean_diff, 2.5);
  EXPECT_NEAR(r.t, 2.5, 1e-12);
  EXPECT_EQ(r.df, 1.0);
  EXPECT_NEAR(r.p_value, 1 - 2 * std::atan(2.5) / M_PI, 1e-9);
  // Every item its own cluster: the paired t-test exactly.
  Rng g(9);
  std::vector<double> x, y;
  std::vector<size_t> own;
  for (size_t i = 0; i < 25; ++i)
    x.push_back(g.normal()), y.push_back(g.normal() + 0.3), own.push_back(i);
  EXPECT_NEAR(cluster_paired_t_test(x, y, own).p_value, paired_t_test(x, y).p_value, 1e-12);
  EXPECT_EQ(paired_p_value(x, y, false, own), paired_p_value(x, y, false));
  // One cluster: undefined (NaN), which paired_p_value reports as 1.
  EXPECT_TRUE(std::isnan(cluster_paired_t_test(a, b, std::vector<size_t>(4, 0)).p_value));
  EXPECT_EQ(paired_p_value(a, b, false, std::vector<size_t>(4, 0)), 1.0);
  EXPECT_THROW(cluster_paired_t_test(a, b, std::vector<size_t>(3, 0)), Error);
}

// Items that move together (stories sharing a random offset) make item-level tests reject a true
// null far too often; the cluster-robust test holds its level. 40 clusters of 8 items, the
// difference d = u_cluster + e_item with u ~ N(0, 1), e ~ N(0, 0.5^2), no true effect.
TEST(Stats, ClusterRobustTestHoldsItsLevelWhereItemTestsDoNot) {
  Rng g(77);
  int item_rejects = 0, cluster_rejects = 0, binary_item = 0, binary_cluster = 0, power = 0;
  const int reps = 1000;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> a, b, a01, b01;
    std::vector<size_t> cluster;
    for (size_t c = 0; c < 40; ++c) {
      const double u = g.normal();
      for (int k = 0; k < 8; ++k) {
        a.push_back(0.0);
        b.push_back(u + 0.5 * g.normal());
        // A 0/1 metric whose success rate shifts with the story: both runs share it, and the
        // story's shift moves which run wins.
        const double pa = 0.5 + 0.4 * std::tanh(u), pb = 0.5 - 0.4 * std::tanh(u);
        a01.push_back(g.uniform() < pa ? 1.0 : 0.0);
        b01.push_back(g.uniform() < pb ? 1.0 : 0.0);
        cluster.push_back(c);
      }
    }
    item_rejects += paired_p_value(a, b, false) < 0.05;
    cluster_rejects += paired_p_value(a, b, false, cluster) < 0.05;
    binary_item += paired_p_value(a01, b01, true) < 0.05;
    binary_cluster += paired_p_value(a01, b01, true, cluster) < 0.05;
    // ...and it still finds a real effect of 0.6 (about 3.7 of its standard errors).
    for (double& v : b) v += 0.6;
    power += paired_p_value(a, b, false, cluster) < 0.05;
  }
  EXPECT_GT(item_rejects, reps * 3 / 10) << item_rejects;
  EXPECT_LT(cluster_rejects, reps * 8 / 100) << cluster_rejects;
  EXPECT_GT(binary_item, reps / 5) << binary_item;
  EXPECT_LT(binary_cluster, reps * 8 / 100) << binary_cluster;
  EXPECT_GT(power, reps * 85 / 100) << power;
  std::printf(
      "rejections at 5%% under the null: continuous item %d, cluster %d; binary item %d, "
      "cluster %d; with an effect, cluster %d (of %d)\n",
      item_rejects, cluster_rejects, binary_item, binary_cluster, power, reps);
}

}  // namespace
}  // namespace reprise::eval
