#include "cli/interrupt.hpp"

#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "docker/docker.hpp"
#include "grading/contract.hpp"

namespace xqw::cli {

std::string default_watcher_id() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return fmt::format("grade-{}", getpid());
  return fmt::format("grade-{}-{}", host, getpid());
}

void remove_run_containers(const std::string& docker_socket, const std::string& watcher_id) {
  try {
    docker::Client engine(docker_socket);
    engine.remove_by_label(std::string(grading::kWatcherLabel) + "=" + watcher_id);
  } catch (const std::exception& error) {
    std::cerr << "xqueue-watcher grade: could not remove the containers labelled " << watcher_id << ": "
              << error.what() << "\n";
  }
}

InterruptWatch::InterruptWatch(std::string_view name, std::function<void()> on_interrupt)
    : name_(name), on_interrupt_(std::move(on_interrupt)) {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
  thread_ = std::thread([this] { loop(); });
}

InterruptWatch::~InterruptWatch() {
  done_ = true;
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void InterruptWatch::loop() {
  const timespec quarter{.tv_sec = 0, .tv_nsec = 250'000'000};
  while (!done_) {
    const int received = sigtimedwait(&signals_, nullptr, &quarter);
    if (received > 0 && !interrupted_) {
      interrupted_ = true;
      std::cerr << "\n"
                << name_ << ": " << strsignal(received) << ": stopping; removing the containers in flight\n";
    }
    if (interrupted_) on_interrupt_();
  }
}

}  // namespace xqw::cli
