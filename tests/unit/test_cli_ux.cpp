// What users coming from llama.cpp and scripts meet at the command line: interrupting a chat
// reply, scripted chat's error channel and JSON lines, run's llama.cpp-style flags, and the
// checks that happen before any work (output paths, prompt files, context size).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

void expect_one_line_error(const test::CommandResult& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_CONTAINS(r.err, fragment);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

// `reprise` with its three standard streams on pipes, for tests that talk to it while it runs.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int in[2], out[2], err[2];
    if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      std::vector<char*> argv;
      const std::string bin = test::binary();
      argv.push_back(const_cast<char*>(bin.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && status_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {in_, out_, err_})
      if (fd >= 0) close(fd);
  }

  void write_line(const std::string& line) {
    const std::string s = line + "\n";
    ASSERT_EQ(::write(in_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void signal(int sig) { kill(pid_, sig); }

  // Reads both streams until `pred(out, err)` holds or `limit` passes; returns whether it held.
  template <typename Pred>
  bool read_until(Pred pred, std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred(out, err)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 200))) < 0) return false;
      char buf[4096];
      bool any = false;
      for (int k = 0; k < 2; ++k)
        if (fds[k].revents & (POLLIN | POLLHUP)) {
          const ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
          if (n > 0) (k == 0 ? out : err).append(buf, static_cast<size_t>(n)), any = true;
        }
      if (!any && exited()) return pred(out, err);
    }
    return true;
  }

  bool exited() {
    if (status_ >= 0) return true;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
    return status_ >= 0;
  }
  // Waits up to `limit` for the exit; the wait status, or -1.
  int wait_exit(std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!exited() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
    return status_;
  }

  std::string out, err;

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  int status_ = -1;
};

// llama.cpp's behaviour: Ctrl-C during a reply stops the reply and returns to the prompt with the
// conversation kept; Ctrl-C at the prompt exits.
TEST(CliChat, CtrlCStopsTheReplyAndKeepsTheConversation) {
  // A long, slow reply: 80 path positions per token and room for 2,000 tokens.
  Child c({"chat", "-m", test::default_model().string(), "-t", "1", "--temp", "0", "-n", "2000",
           "--path", "repeat:0:5:16"});
  c.write_line("Once upon a time");
  ASSERT_TRUE(c.read_until([](auto& out, auto&) { return out.size() >= 8; })) << c.err;
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until([](auto&, auto& err) { return err.find("interrupted") != err.npos; }))
      << c.out << c.err;
  EXPECT_CONTAINS(c.err, "[reply interrupted after ");
  EXPECT_FALSE(c.exited());
  // The program reads on: the next line is a command, and the conversation has both turns.
  c.write_line("/stats");
  ASSERT_TRUE(c.read_until([](auto& out, auto&) { return out.find("turns") != out.npos; }))
      << c.out << c.err;
  EXPECT_CONTAINS(c.out, "; 2 turns; last reply ");
  // At the prompt, Ctrl-C ends the program.
  c.signal(SIGINT);
  const int st = c.wait_exit();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 130);
}

TEST(CliChat, ScriptedErrorsGoToStderrAndFailTheExitCode) {
  const std::string script = "/path repeat:1:3\nOnce upon a time\n/path\n/path 0,9\n/frob\nA cat\n";
  auto r = test::run_cli("chat " + test::default_model_arg() + " --temp 0 -n 8", script);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out.find("error"), std::string::npos) << r.out;
  EXPECT_CONTAINS(r.err, "reprise: error: layer path '0,9': layer out of range '9'");
  EXPECT_CONTAINS(r.err, "reprise: error: unknown command /frob");
  EXPECT_CONTAINS(r.err, "2 input line(s) failed");
  // "/path" alone shows the path and changes nothing.
  EXPECT_CONTAINS(r.out, "path set to 0..2,1..4\n");
  EXPECT_CONTAINS(r.out, "path 0..2,1..4 (switch with /path SPEC");
  auto ok = test::run_cli("chat " + test::default_model_arg() + " --temp 0 -n 4", "Hi\n/stats\n");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(CliChat, JsonLinesKeepEachReplyOneRecord) {
  // A reply long enough to contain newlines (stories260K writes paragraphs).
  auto r = test::run_cli("chat " + test::default_model_arg() + " --temp 0 -n 200 --jsonl",
                         "Once upon a time\n/path skip:4:5\nThe dog ran\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(lines, line);) {
    records.push_back(nlohmann::json::parse(line, nullptr, false));
    ASSERT_TRUE(records.back().is_object()) << line;
  }
  ASSERT_EQ(records.size(), 3u) << r.out;
  EXPECT_TRUE(records[0]["reply"].is_string());
  EXPECT_NE(records[0]["reply"].get<std::string>().find('\n'), std::string::npos)
      << "pick a prompt whose reply has a newline: " << records[0];
  EXPECT_EQ(records[1]["info"], "path set to 0..3");
  EXPECT_TRUE(records[2]["finish_reason"].is_string());
  EXPECT_GT(records[2]["tokens"].get<int>(), 0);
}

TEST(CliRun, LlamaCppFlags) {
  const std::string m = test::default_model_arg();
  // -c, -s, -ngl (noted, ignored), a repeated flag taking its last value, the seed and load time.
  auto r = test::run_cli("run " + m +
                         " -p 'Once upon a time' -n 8 -c 64 -s 5 -ngl 99 --temp 0.7 "
                         "--temp 0 --min-p 0.05 --repeat-penalty 1.1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "-ngl 99 ignored; reprise runs on the CPU");
  EXPECT_CONTAINS(r.err, "; seed 5\n");
  EXPECT_CONTAINS(r.err, "; load ");
  // --temp 0 won: greedy, so the same as a plain greedy run with the same penalty.
  auto g = test::run_cli("run " + m + " -p 'Once upon a time' -n 8 --ctx 64 --repeat-penalty 1.1");
  EXPECT_EQ(r.out, g.out);
  // -s -1 (and no -s) draw a random seed and print it.
  auto a = test::run_cli("run " + m + " -p hi -n 1 -s -1");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_CONTAINS(a.err, "; seed ");
}

TEST(CliRun, PromptSources) {
  const std::string m = test::default_model_arg();
  expect_one_line_error(test::run_cli("run " + m + " --tokens 1 -p hi"), "excludes");
  // -f FILE gives the same text as -p.
  const fs::path f = test::scratch("prompt.txt");
  std::ofstream(f) << "Once upon a time";
  auto a = test::run_cli("run " + m + " -f '" + f.string() + "' -n 6");
  auto b = test::run_cli("run " + m + " -p 'Once upon a time' -n 6");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  expect_one_line_error(test::run_cli("run " + m + " -f /nonexistent/p.txt"), "/nonexistent/p.txt");
  // An empty prompt starts from BOS alone, as in llama.cpp.
  auto e = test::run_cli("run " + m + " -p '' -n 4");
  EXPECT_EQ(e.exit_code, 0) << e.err;
  EXPECT_CONTAINS(e.err, "prompt: 1 tokens");
  expect_one_line_error(test::run_cli("run " + m + " -n 4"), "run needs a prompt");
}

TEST(CliRun, MinusOneRunsToTheContextEndAndSaysSo) {
  auto r = test::run_cli("run " + test::default_model_arg() +
                         " -p 'Once upon a time' -n -1 --ctx 24 --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "generation stopped at the end of the context (24 tokens; raise --ctx)");
  // 5 prompt tokens + 19 fed back fill the 24 positions; the 20th token is sampled, never fed back.
  EXPECT_CONTAINS(r.err, "generated: 20 tokens");
}

TEST(CliRun, FinalNewlineComesBeforeTheStats) {
  // Built piecewise: GCC 12 warns falsely (-Wrestrict) about "'" + std::string.
  std::string cmd = "'";
  cmd += test::binary();
  cmd += "' run " + test::default_model_arg() + " -p 'Once upon a time' -n 4 2>&1 | cat";
  auto r = test::run_shell(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const size_t stats = r.out.find("prompt: ");
  ASSERT_NE(stats, std::string::npos) << r.out;
  ASSERT_GT(stats, 0u);
  EXPECT_EQ(r.out[stats - 1], '\n') << r.out;
  EXPECT_LT(r.out.find("Once upon a time"), stats) << r.out;
}

TEST(CliContext, BeyondTheTrainingContextWarns) {
  const std::string m = test::default_model_arg();
  auto r = test::run_cli("run " + m + " -p hi -n 1 --ctx 4096");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "warning: --ctx 4096 is beyond the model's training context of 2048");
  auto ok = test::run_cli("run " + m + " -p hi -n 1 --ctx 2048");
  EXPECT_EQ(ok.err.find("warning"), std::string::npos) << ok.err;
  const fs::path text = test::source_dir() / "data/tinystories/tinystories_val.txt";
  auto p = test::run_cli("perplexity " + m + " -f '" + text.string() + "' -c 4096 --chunks 1");
  EXPECT_CONTAINS(p.err, "warning: -c 4096 is beyond the model's training context of 2048");
}

TEST(CliChecks, OutputPathsAreCheckedBeforeTheWork) {
  const std::string m = test::default_model_arg();
  const auto t0 = std::chrono::steady_clock::now();
  expect_one_line_error(test::run_cli("eval " + m + " --task arc_easy -o /nonexistent/x.json"),
                        "-o /nonexistent/x.json: the folder /nonexistent does not exist");
  // An existing synth output is refused at once, without --force, and left as it was.
  const fs::path out = test::scratch("synth-existing.gguf");
  std::ofstream(out) << "keep me";
  expect_one_line_error(test::run_cli("synth --like qwen2.5-0.5b -o '" + out.string() + "'"),
                        "already exists (use --force to overwrite)");
  EXPECT_EQ(test::slurp(out), "keep me");
  expect_one_line_error(test::run_cli("synth --like qwen2.5-0.5b -o /nonexistent/m.gguf"),
                        "the folder /nonexistent does not exist");
  expect_one_line_error(test::run_cli("synth --like qwen2.5-0.5b -o /"), "is a folder");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(CliChecks, SmallOnes) {
  const std::string m = test::default_model_arg();
  expect_one_line_error(test::run_cli("perplexity " + m + " -f /tmp"),
                        "/tmp: is a folder, not a text file");
  expect_one_line_error(test::run_cli("run " + m + " -p hi --path loop:1:3:2"),
                        "unknown form 'loop:'; the forms are 'repeat:I:J[:K]'");
  auto info = test::run_cli("info -m '" + test::default_model().string() + "'");
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_CONTAINS(info.out, "layers:       5");
  // Special and byte tokens print as llama.cpp's llama-tokenize shows them.
  auto t = test::run_cli("tokenize -m '" + test::default_model().string() +
                         "' -p 'ä<s>' --special --pieces");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_CONTAINS(t.out, "       1 -> '<s>'\n");
  EXPECT_CONTAINS(t.out, "     198 -> '<0xC3>'\n");
  EXPECT_CONTAINS(t.out, "     167 -> '<0xA4>'\n");
  // make_probe.sh writes a relative output in the caller's folder.
  const fs::path dir = test::scratch("probe-caller");
  fs::create_directories(dir);
  auto probe =
      test::run_shell("cd '" + dir.string() + "' && bash '" +
                      (test::source_dir() / "bench/scan/make_probe.sh").string() + "' rel.jsonl 3");
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  EXPECT_EQ(count_lines(test::slurp(dir / "rel.jsonl")), 3);
}

// --path takes a mergekit passthrough recipe, such as `reprise export --format mergekit` writes.
TEST(CliPath, MergekitRecipeFile) {
  const std::string m = test::default_model_arg();
  const fs::path recipe = test::scratch("deep.yaml");
  fs::remove(recipe);
  auto e = test::run_cli("export " + m + " --path repeat:1:4 -o '" + recipe.string() + "'");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto a =
      test::run_cli("run " + m + " -p 'Once upon a time' -n 8 --path '" + recipe.string() + "'");
  auto b = test::run_cli("run " + m + " -p 'Once upon a time' -n 8 --path repeat:1:4");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_CONTAINS(a.err, "path: 0..3,1..4 (8 positions");
  EXPECT_EQ(a.out, b.out);
  // A recipe reprise cannot use is a one-line error naming the file.
  const fs::path bad = test::scratch("bad.yaml");
  std::ofstream(bad) << "merge_method: slerp\nslices: []\n";
  expect_one_line_error(test::run_cli("run " + m + " -p hi --path '" + bad.string() + "'"),
                        bad.string());
  const fs::path wide = test::scratch("wide.yaml");
  std::ofstream(wide) << "slices:\n  - sources:\n      - model: x\n        layer_range: [0, 9]\n"
                         "merge_method: passthrough\n";
  expect_one_line_error(test::run_cli("run " + m + " -p hi --path '" + wide.string() + "'"),
                        wide.string());
}

// Progress bars redraw with '\r' only on a terminal; into a file they write a line per update.
TEST(CliProgress, NoCarriageReturnsInALogFile) {
  const fs::path store = test::scratch("progress-scan.db");
  fs::remove(store);
  auto r = test::run_cli("scan " + test::default_model_arg() +
                         " --task tinystories --limit 2 -o '" + store.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_CONTAINS(r.err, "] 1/16 configs ");
  EXPECT_CONTAINS(r.err, "] 16/16 configs ");
  const fs::path text = test::source_dir() / "data/tinystories/tinystories_val.txt";
  auto p = test::run_cli("perplexity " + test::default_model_arg() + " -f '" + text.string() +
                         "' -c 64 --chunks 3");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(p.err.find('\r'), std::string::npos) << p.err;
  EXPECT_CONTAINS(p.err, "] 3/3 chunks");
  auto a = test::run_cli("analyze " + test::default_model_arg() + " --task tinystories --limit 2");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.err.find('\r'), std::string::npos) << a.err;
  EXPECT_CONTAINS(a.err, "] 1/2 sequences ");
  EXPECT_CONTAINS(a.err, "] 2/2 sequences ");
  // eval's bar moves with every item, although all three go to the model in one batch.
  auto e = test::run_cli("eval " + test::default_model_arg() + " --task tinystories --limit 3");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(e.err.find('\r'), std::string::npos) << e.err;
  EXPECT_CONTAINS(e.err, "] 1/3 items ");
  EXPECT_CONTAINS(e.err, "] 2/3 items ");
  EXPECT_CONTAINS(e.err, "] 3/3 items ");
}

// The widths of the inline SVGs of an HTML page, in CSS px (0 for a width in another unit).
std::vector<double> svg_widths(const std::string& html) {
  std::vector<double> w;
  for (size_t at = 0; (at = html.find("<svg", at)) != std::string::npos; ++at) {
    const size_t a = html.find("width=\"", at) + 7, b = html.find('"', a);
    const std::string v = html.substr(a, b - a);
    w.push_back(v.size() > 2 && v.substr(v.size() - 2) == "px" ? std::stod(v) : 0.0);
  }
  return w;
}

// Both HTML reports fit a 1,280 px window: px-sized figures no wider than the 1,180 px page,
// the title once (as the page's heading, not again inside the figure).
TEST(CliReports, HtmlFitsA1280PxWindow) {
  const fs::path store = test::scratch("fit-scan.db"), scan_html = test::scratch("fit-scan.html"),
                 analyze_html = test::scratch("fit-analyze.html");
  fs::remove(store);
  auto s = test::run_cli("scan " + test::default_model_arg() +
                         " --task tinystories --limit 2 --quiet -o '" + store.string() + "'");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto r = test::run_cli("report '" + store.string() + "' -o '" + scan_html.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = test::run_cli("analyze " + test::default_model_arg() +
                         " --task tinystories --limit 2 -o '" + analyze_html.string() + "'");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  for (const fs::path& f : {scan_html, analyze_html}) {
    const std::string html = test::slurp(f);
    const auto widths = svg_widths(html);
    ASSERT_EQ(widths.size(), 1u) << f;
    EXPECT_GT(widths[0], 300) << f;
    EXPECT_LE(widths[0], 1180) << f;
    EXPECT_EQ(html.find("<?xml"), std::string::npos) << f;
    EXPECT_CONTAINS(html, "svg{max-width:100%");
  }
  EXPECT_CONTAINS(test::slurp(scan_html), "max-width:1180px");
  EXPECT_CONTAINS(test::slurp(analyze_html), "pre{white-space:pre-wrap}");
}

}  // namespace
}  // namespace reprise
