// Pure parts of the engine client: create bodies, pull policies, error kinds, the stream demultiplexer.
#include <algorithm>

#include "docker/docker.hpp"

namespace xqw::docker {

std::string UnsupportedDockerHost::to_string() const {
  return "DOCKER_HOST '" + value + "' is not supported: " + reason;
}

std::expected<std::string, UnsupportedDockerHost> socket_from_docker_host(std::string_view docker_host) {
  constexpr std::string_view kUnix = "unix://";
  if (docker_host.empty()) return std::string(kDefaultSocket);
  auto refuse = [&](std::string reason) {
    return std::unexpected(UnsupportedDockerHost{std::string(docker_host), std::move(reason)});
  };
  if (docker_host.starts_with(kUnix)) {
    const auto path = docker_host.substr(kUnix.size());
    if (path.empty() || path.front() != '/') {
      return refuse("a unix socket needs an absolute path (e.g. unix:///var/run/docker.sock)");
    }
    return std::string(path);
  }
  const auto scheme_end = docker_host.find("://");
  if (scheme_end == std::string_view::npos) {
    return refuse("give the socket as unix:///PATH (e.g. unix:///var/run/docker.sock)");
  }
  return refuse("the engine is reached through a unix socket only, not " +
                std::string(docker_host.substr(0, scheme_end)) + "://");
}

std::string_view to_string(EngineErrorKind kind) {
  switch (kind) {
    case EngineErrorKind::Unreachable:
      return "unreachable";
    case EngineErrorKind::Timeout:
      return "timeout";
    case EngineErrorKind::ImageMissing:
      return "image_missing";
    case EngineErrorKind::ContainerGone:
      return "container_gone";
    case EngineErrorKind::ApiError:
      return "api_error";
    case EngineErrorKind::BadReply:
      return "bad_reply";
  }
  return "unknown";
}

std::optional<PullPolicy> parse_pull_policy(std::string_view text) {
  for (const auto policy : {PullPolicy::Never, PullPolicy::IfNotPresent, PullPolicy::Always}) {
    if (text == to_string(policy)) return policy;
  }
  return std::nullopt;
}

std::string_view to_string(PullPolicy policy) {
  switch (policy) {
    case PullPolicy::Never:
      return "never";
    case PullPolicy::IfNotPresent:
      return "if-not-present";
    case PullPolicy::Always:
      return "always";
  }
  return "unknown";
}

nlohmann::json create_body(const ContainerSpec& spec) {
  using nlohmann::json;
  json host = {
      {"NetworkMode", spec.network ? "bridge" : "none"},
      {"ReadonlyRootfs", spec.read_only_rootfs},
      {"CapDrop", json::array({"ALL"})},
      {"CapAdd", spec.cap_add},
      {"SecurityOpt", spec.no_new_privileges ? json::array({"no-new-privileges"}) : json::array()},
      {"AutoRemove", false},
      {"Privileged", false},
      // One small log file: output beyond the caps never reaches the engine's disk for long.
      {"LogConfig",
       {{"Type", "json-file"},
        {"Config",
         {{"max-size", std::to_string(std::max<std::int64_t>(spec.log_max_bytes, 4096))},
          {"max-file", "1"}}}}},
  };
  if (spec.memory_bytes > 0) {
    host["Memory"] = spec.memory_bytes;
    host["MemorySwap"] = spec.memory_bytes;  // equal: no swap beyond the memory limit
  }
  if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
  if (spec.pids_limit > 0) host["PidsLimit"] = spec.pids_limit;
  if (!spec.runtime.empty()) host["Runtime"] = spec.runtime;

  json mounts = json::array();
  for (const auto& mount : spec.mounts) {
    mounts.push_back({{"Type", "bind"},
                      {"Source", mount.source},
                      {"Target", mount.target},
                      {"ReadOnly", mount.read_only},
                      {"BindOptions", {{"Propagation", "rprivate"}}}});
  }
  host["Mounts"] = mounts;

  json tmpfs = json::object();
  for (const auto& [path, size] : spec.tmpfs) {
    tmpfs[path] = "rw,nosuid,nodev,noexec,size=" + std::to_string(size) + ",mode=1777";
  }
  host["Tmpfs"] = tmpfs;

  json ulimits = json::array();
  for (const auto& limit : spec.ulimits) {
    ulimits.push_back({{"Name", limit.name}, {"Soft", limit.soft}, {"Hard", limit.hard}});
  }
  host["Ulimits"] = ulimits;

  json body = {
      {"Image", spec.image},  {"Env", spec.env},      {"Labels", spec.labels},
      {"AttachStdin", false}, {"AttachStdout", true}, {"AttachStderr", true},
      {"Tty", false},         {"OpenStdin", false},   {"NetworkDisabled", !spec.network},
      {"HostConfig", host},
  };
  if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
  if (spec.entrypoint) body["Entrypoint"] = *spec.entrypoint;
  if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
  if (!spec.user.empty()) body["User"] = spec.user;
  return body;
}

bool StreamDemuxer::feed(std::string_view chunk) {
  if (!not_multiplexed_.empty()) return false;
  while (!chunk.empty()) {
    if (frame_remaining_ == 0) {
      const std::size_t take = std::min(chunk.size(), sizeof(header_) - header_filled_);
      std::copy_n(chunk.data(), take, header_ + header_filled_);
      header_filled_ += take;
      chunk.remove_prefix(take);
      if (header_filled_ < sizeof(header_)) break;
      header_filled_ = 0;
      // A TTY container's raw output (or anything else) is not framed: never read it as frames.
      if (header_[0] > 2 || header_[1] != 0 || header_[2] != 0 || header_[3] != 0) {
        static constexpr std::string_view kHex = "0123456789abcdef";
        std::string bytes;
        for (int i = 0; i < 4; ++i)
          bytes += std::string(i ? " " : "") + kHex[header_[i] >> 4] + kHex[header_[i] & 0xF];
        not_multiplexed_ = "the output is not a multiplexed stream (a frame header starts " + bytes +
                           "; expected a stream id 0-2, then three zero bytes)";
        return false;
      }
      frame_stream_ = header_[0];
      frame_remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                         (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      continue;  // an empty frame simply ends here
    }
    const std::size_t take = std::min<std::size_t>(chunk.size(), frame_remaining_);
    append(frame_stream_, chunk.substr(0, take));
    frame_remaining_ -= static_cast<std::uint32_t>(take);
    chunk.remove_prefix(take);
  }
  return !output_.cap_hit();
}

std::expected<CapturedOutput, std::string> StreamDemuxer::take() {
  if (!not_multiplexed_.empty()) return std::unexpected(not_multiplexed_);
  return std::move(output_);
}

void StreamDemuxer::append(int stream, std::string_view bytes) {
  // Stream 2 is stderr; 1 (and 0, stdin echo, never used here) count as stdout.
  CapturedStream& target = stream == 2 ? output_.err : output_.out;
  const std::int64_t cap = stream == 2 ? caps_.stderr_bytes : caps_.stdout_bytes;
  target.total_bytes += bytes.size();
  const std::size_t room = target.data.size() < static_cast<std::size_t>(cap)
                               ? static_cast<std::size_t>(cap) - target.data.size()
                               : 0;
  target.data.append(bytes.substr(0, std::min(room, bytes.size())));
  if (target.total_bytes > static_cast<std::uint64_t>(cap)) target.truncated = true;
}

}  // namespace xqw::docker
