#include "floor/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace xqw::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::array<FileDescriptor, 2> make_pipe(const std::string& program) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error("cannot start " + program + ": pipe: " + std::strerror(errno));
  }
  return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

// posix_spawn's file actions, released on every path.
class SpawnActions {
 public:
  SpawnActions() { ::posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

}  // namespace

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileDescriptor::~FileDescriptor() { close(); }

void FileDescriptor::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::runtime_error("cannot start a process without a program name");
  auto out = make_pipe(argv[0]);
  auto err = make_pipe(argv[0]);
  SpawnActions actions;
  ::posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(actions.get(), out[1].get(), 1);
  ::posix_spawn_file_actions_adddup2(actions.get(), err[1].get(), 2);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int failed = ::posix_spawnp(&pid_, argv[0].c_str(), actions.get(), nullptr, args.data(), environ);
  if (failed != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(failed));
  stdout_ = std::move(out[0]);
  stderr_ = std::move(err[0]);
  for (auto* end : {&stdout_, &stderr_})
    ::fcntl(end->get(), F_SETFL, ::fcntl(end->get(), F_GETFL) | O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

bool ChildProcess::read_some(FileDescriptor& pipe, docker::CapturedStream& stream, std::int64_t cap) {
  std::array<char, 65536> buffer;
  while (true) {
    const ssize_t n = ::read(pipe.get(), buffer.data(), buffer.size());
    if (n > 0) {
      stream.total_bytes += static_cast<std::uint64_t>(n);
      const auto room =
          static_cast<std::size_t>(std::max<std::int64_t>(0, cap - std::int64_t(stream.data.size())));
      stream.data.append(buffer.data(), std::min(room, static_cast<std::size_t>(n)));
      if (stream.total_bytes > static_cast<std::uint64_t>(cap)) stream.truncated = true;
      continue;
    }
    if (n == 0) {
      pipe.close();
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    pipe.close();
    return false;
  }
}

ChildProcess::ReadEnd ChildProcess::read_until(Clock::time_point deadline, docker::OutputCaps caps) {
  while (stdout_.open() || stderr_.open()) {
    if (output_.cap_hit()) return ReadEnd::Cap;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return ReadEnd::Deadline;
    std::array<pollfd, 2> fds{pollfd{stdout_.get(), POLLIN, 0}, pollfd{stderr_.get(), POLLIN, 0}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    if (ready <= 0) continue;
    if (fds[0].revents != 0) read_some(stdout_, output_.out, caps.stdout_bytes);
    if (fds[1].revents != 0) read_some(stderr_, output_.err, caps.stderr_bytes);
  }
  return output_.cap_hit() ? ReadEnd::Cap : ReadEnd::Closed;
}

int ChildProcess::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      pid_ = -1;
      return -1;
    }
  }
  pid_ = -1;
  stdout_.close();
  stderr_.close();
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace xqw::bench
