// bench/floor: one child process (the docker CLI) whose stdout and stderr are read into capped buffers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "docker/docker.hpp"

namespace xqw::bench {

// A pipe end that closes itself.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void close();

 private:
  int fd_ = -1;
};

class ChildProcess {
 public:
  enum class ReadEnd { Closed, Deadline, Cap };

  // Starts argv[0] (looked up in PATH) with stdin from /dev/null and stdout, stderr on pipes.
  // Throws std::runtime_error naming the program and the reason.
  explicit ChildProcess(const std::vector<std::string>& argv);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills (SIGKILL) and reaps a child that is still running.
  ~ChildProcess();

  // Reads both pipes until both close, `deadline` passes, or a stream goes over its cap (bytes beyond a
  // cap are counted, not kept).
  ReadEnd read_until(std::chrono::steady_clock::time_point deadline, docker::OutputCaps caps);
  // Reaps the child; its exit status, or 128 + the signal that ended it.
  int wait();
  const docker::CapturedOutput& output() const { return output_; }

 private:
  bool read_some(FileDescriptor& pipe, docker::CapturedStream& stream, std::int64_t cap);

  pid_t pid_ = -1;
  FileDescriptor stdout_, stderr_;
  docker::CapturedOutput output_;
};

}  // namespace xqw::bench
