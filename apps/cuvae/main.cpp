// cuvae: one command-line program, one subcommand per job.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#include <unistd.h>
#endif
#include <new>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "core/distributed.h"
#include "core/check.h"
#include "flags.h"

namespace cuvae::app {

void print_written(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) std::cout << "wrote " << p << "\n";
}

}  // namespace cuvae::app

namespace {
// Transparent huge pages for every heap allocation. A training process touches hundreds of MiB of
// fresh memory (activations, oneDNN's reordered copies, checkpoints being written), and on the
// virtual machines measured each 4 KiB page fault was so slow that zeroing 512 MiB took 2.0 s
// (0.7 s with 2 MiB pages); the first ResNet-18 training step and the checkpoint writes took
// 3.3 s longer without huge pages. glibc (2.35 and later) madvises its heap for huge pages when
// started with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, a setting read only at start-up, so the
// program restarts itself once with it (same PID, same arguments). Only when the kernel gives huge
// pages on request ("madvise" mode); CUVAE_HUGEPAGES=0 turns this off.
void restart_with_huge_pages(char** argv) {
#if defined(__GLIBC__) && defined(__linux__)
  const char* off = std::getenv("CUVAE_HUGEPAGES");
  if (off != nullptr && std::strcmp(off, "0") == 0) return;
  const char* tun = std::getenv("GLIBC_TUNABLES");
  if (tun != nullptr && std::strstr(tun, "glibc.malloc.hugetlb") != nullptr) return;  // already set (or restarted)
  int major = 0, minor = 0;
  if (std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 || major < 2 || (major == 2 && minor < 35))
    return;
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  if (mode.find("[madvise]") == std::string::npos) return;  // "always" needs nothing, "never" allows nothing
  const std::string value = (tun != nullptr && *tun != '\0' ? std::string(tun) + ":" : "") + "glibc.malloc.hugetlb=1";
  if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: go on without huge pages
#else
  (void)argv;
#endif
}
}  // namespace

int main(int argc, char** argv) {
  restart_with_huge_pages(argv);
  // A file-size limit (ulimit -f) must fail the write that reaches it with EFBIG, which
  // write_file_atomic reports and cleans up after, instead of killing the process mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"cuvae: convolutional VAEs and a ResNet-18 classifier on MNIST, FashionMNIST and CIFAR-10, on a GPU or the CPU"};
  app.require_subcommand(1);
  // A later repetition of a flag overrides an earlier one (scripts/demo relies on this).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "cuvae 0.1.0");

  std::vector<cuvae::app::Command> commands;
  cuvae::app::add_vae_commands(app, commands);
  cuvae::app::add_classifier_commands(app, commands);
  cuvae::app::add_latent_commands(app, commands);
  cuvae::app::add_study_commands(app, commands);
  cuvae::app::add_serve_command(app, commands);

  // --cpu-backend and --nondeterministic on every command that runs a model (each has --device).
  cuvae::app::BackendFlags backend;
  cuvae::app::add_backend_flags(app, backend);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    cuvae::app::apply_backend_flags(backend);
    for (auto& c : commands)
      if (c.cli->parsed()) c.run();
  } catch (const cuvae::Error& e) {
    std::fflush(stdout);
    // A job names its options by field; the command line says them as its flags.
    std::cerr << "cuvae: error: " << e.message(cuvae::FieldStyle::Flag) << std::endl;
    cuvae::Communicator::abort_all(1);  // data-parallel: the other ranks stop too instead of waiting
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::cerr << "cuvae: error: out of host memory (try a smaller --batch or --n)" << std::endl;
    cuvae::Communicator::abort_all(1);
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "cuvae: error: " << e.what() << std::endl;
    cuvae::Communicator::abort_all(1);
    return 1;
  }
  return 0;
}
