// docker: a typed client for the Docker Engine API over its unix socket (API version pinned in the path).
// Owns container specs, lifecycle (create, start, wait with deadline, kill, remove), capped output, images.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "http/http.hpp"

namespace xqw::docker {

// Docker 20.10 speaks API 1.41; newer engines accept older versions in the path.
inline constexpr std::string_view kApiVersion = "v1.41";
inline constexpr std::string_view kDefaultSocket = "/var/run/docker.sock";

// A DOCKER_HOST value this client cannot use: only unix:// sockets are reached.
struct UnsupportedDockerHost {
  std::string value;   // DOCKER_HOST as given
  std::string reason;  // why, for people
  // "DOCKER_HOST 'tcp://10.0.0.1:2375' is not supported: <reason>"
  std::string to_string() const;
};
// The engine socket a DOCKER_HOST value names (pure): "unix:///PATH" is /PATH; an empty value means the
// default socket. Any other scheme (tcp://, ssh://, fd://, npipe://), a bare path or "unix://" alone is
// refused with the reason. Who wins over DOCKER_HOST is decided once, by configuration (config.hpp).
std::expected<std::string, UnsupportedDockerHost> socket_from_docker_host(std::string_view docker_host);

// ---- errors a caller can act on -------------------------------------------------------------
// Every EngineError is one of these; kind() says which, so a caller maps an error to a metric label or a
// decision with one switch (or table) instead of a catch per subtype. One value per subtype below.
enum class EngineErrorKind {
  Unreachable,    // EngineUnreachable: no reply at all
  Timeout,        // EngineTimeout: no reply in time
  ImageMissing,   // ImageMissing: the image is not there and cannot be had
  ContainerGone,  // ContainerGone: the engine answered 404 for the container
  ApiError,       // EngineApiError: the engine answered 4xx/5xx
  BadReply,       // EngineBadReply: the engine answered 2xx, but not in the shape the API documents
};
// "unreachable", "timeout", "image_missing", "container_gone", "api_error", "bad_reply"
std::string_view to_string(EngineErrorKind kind);

class EngineError : public std::runtime_error {
 public:
  EngineErrorKind kind() const { return kind_; }

 protected:
  EngineError(EngineErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}

 private:
  EngineErrorKind kind_;
};
// No reply from the engine at all (socket missing, refused, engine hung).
class EngineUnreachable : public EngineError {
 public:
  explicit EngineUnreachable(const std::string& what) : EngineError(EngineErrorKind::Unreachable, what) {}
};
class ImageMissing : public EngineError {
 public:
  ImageMissing(const std::string& image, const std::string& reason)
      : EngineError(EngineErrorKind::ImageMissing, "image " + image + " is not available: " + reason),
        image_(image),
        reason_(reason) {}
  const std::string& image() const { return image_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string image_;
  std::string reason_;
};
class ContainerGone : public EngineError {
 public:
  explicit ContainerGone(const std::string& what) : EngineError(EngineErrorKind::ContainerGone, what) {}
};
class EngineTimeout : public EngineError {
 public:
  explicit EngineTimeout(const std::string& what) : EngineError(EngineErrorKind::Timeout, what) {}
};
// The engine answered 4xx/5xx; carries its status and its own message.
class EngineApiError : public EngineError {
 public:
  EngineApiError(const std::string& what, long status, std::string engine_message)
      : EngineError(EngineErrorKind::ApiError, what),
        status_(status),
        engine_message_(std::move(engine_message)) {}
  long status() const { return status_; }
  const std::string& engine_message() const { return engine_message_; }

 private:
  long status_;
  std::string engine_message_;
};
// The engine answered with success, but its reply is not the documented shape: not JSON, an array where an
// object belongs, a field missing or of the wrong type. what() names the endpoint and the problem, e.g.
// "inspect container c1: State.OOMKilled is a string, expected a boolean".
class EngineBadReply : public EngineError {
 public:
  explicit EngineBadReply(const std::string& what) : EngineError(EngineErrorKind::BadReply, what) {}
};

// ---- plain data -------------------------------------------------------------------------------
enum class PullPolicy { Never, IfNotPresent, Always };
// The names to_string gives ("never", "if-not-present", "always") back as a policy; nothing else.
// Configuration parses a queue's policy once (config::QueueConfig::pull_policy is typed).
std::optional<PullPolicy> parse_pull_policy(std::string_view text);
std::string_view to_string(PullPolicy policy);

struct BindMount {
  std::string source;  // path as the engine's host sees it
  std::string target;  // path inside the container
  bool read_only = true;
};

struct Ulimit {
  std::string name;  // "nofile", "fsize", ...
  std::int64_t soft = 0;
  std::int64_t hard = 0;
};

struct ContainerSpec {
  std::string image;
  std::vector<std::string> cmd;                        // empty: the image's CMD
  std::optional<std::vector<std::string>> entrypoint;  // unset: the image's ENTRYPOINT
  std::vector<std::string> env;                        // "NAME=value"
  std::string working_dir;
  std::string user;  // empty: the image's USER
  std::map<std::string, std::string> labels;
  std::vector<BindMount> mounts;
  bool read_only_rootfs = true;
  std::map<std::string, std::int64_t> tmpfs;  // path -> size in bytes (mode 1777, nosuid, nodev)
  bool network = false;                       // false: NetworkMode "none"
  std::int64_t memory_bytes = 0;              // 0: unlimited; swap is always set equal
  std::int64_t nano_cpus = 0;
  std::int64_t pids_limit = 0;
  std::vector<std::string> cap_add;  // every other capability is dropped
  bool no_new_privileges = true;
  std::vector<Ulimit> ulimits;
  std::string runtime;                   // empty: the engine's default (runc)
  std::int64_t log_max_bytes = 1 << 20;  // bounds the engine's json-file log on disk
};

// The create request's JSON body (pure; unit-tested).
nlohmann::json create_body(const ContainerSpec& spec);

struct ImageInfo {
  std::string id;
  std::string user;
  std::map<std::string, std::string> labels;
};

struct VersionInfo {
  std::string version;
  std::string api_version;
  std::string os;
  std::map<std::string, nlohmann::json> runtimes;  // from /info, name -> description
  int cpus = 0;                                    // from /info (NCPU): the engine host's CPU count
};

// /version's reply and, when /info answered, its reply, as a VersionInfo (pure). Throws EngineBadReply when
// /version is not a JSON object; fields of the wrong type are left empty, /info that is unusable is ignored.
VersionInfo parse_version(std::string_view version_body, std::optional<std::string_view> info_body);

struct ContainerState {
  std::string status;  // "created", "running", "exited", ...
  bool running = false;
  bool oom_killed = false;
  int exit_code = 0;
};

struct WaitResult {
  bool deadline_hit = false;  // the deadline passed and the container was killed
  int exit_code = 0;
};

// One captured stream, never more than its cap in memory.
struct CapturedStream {
  std::string data;
  std::uint64_t total_bytes = 0;  // everything the container printed that we saw
  bool truncated = false;
};

struct CapturedOutput {
  CapturedStream out;
  CapturedStream err;
  bool cap_hit() const { return out.truncated || err.truncated; }
};

struct OutputCaps {
  std::int64_t stdout_bytes = 1 << 20;
  std::int64_t stderr_bytes = 256 << 10;
};

// Splits the engine's multiplexed stream (8-byte headers: stream id, 3 zero bytes, big-endian size)
// into stdout and stderr, whatever the chunking, keeping at most the cap of each.
class StreamDemuxer {
 public:
  explicit StreamDemuxer(OutputCaps caps) : caps_(caps) {}
  // Returns false once a stream has gone over its cap, or once the bytes are not a multiplexed stream (a
  // header whose stream id is not 0, 1 or 2, or whose padding is not zero): the caller should stop reading.
  bool feed(std::string_view chunk);
  const CapturedOutput& output() const { return output_; }
  // What was captured, or why the bytes were not the engine's multiplexed stream (then nothing more was
  // kept).
  std::expected<CapturedOutput, std::string> take();

 private:
  void append(int stream, std::string_view bytes);
  OutputCaps caps_;
  CapturedOutput output_;
  std::string not_multiplexed_;  // why, once a header was not a frame header
  unsigned char header_[8]{};
  std::size_t header_filled_ = 0;
  std::uint32_t frame_remaining_ = 0;
  int frame_stream_ = 0;
};

struct ContainerSummary {
  std::string id;
  std::string state;
  std::map<std::string, std::string> labels;
};

// ---- the engine's replies, read (pure; unit-tested) --------------------------------------------------
// Each reads the body of a 2xx reply, checks the type of every field it uses, and throws EngineBadReply
// whose what() starts with the endpoint and its subject ("inspect container c1: ...") and says what was
// wrong: not JSON, not an object (or list), a required field missing, a field of the wrong type. A field
// the engine may leave out (or null) takes its default; one that is there must have its documented type.

// POST /containers/create: {"Id": non-empty string}.
std::string parse_create_reply(std::string_view body, std::string_view image);
// POST /containers/{id}/wait: {"StatusCode": integer} (an int).
int parse_wait_reply(std::string_view body, std::string_view id);
// GET /containers/{id}/json: {"State": {"Status": string, "Running": bool, "OOMKilled": bool, "ExitCode":
// int}}; State is required, its fields default to "", false, false, 0.
ContainerState parse_inspect_reply(std::string_view body, std::string_view id);
// GET /images/{name}/json: {"Id": string, "Config": {"User": string, "Labels": {string: string}}}; Config,
// User and Labels may be absent or null.
ImageInfo parse_image_reply(std::string_view body, std::string_view image);
// POST /images/create: the pull's progress stream, one JSON object per line (blank lines skipped). Throws
// ImageMissing naming the image for a line carrying "error", EngineBadReply for a line that is not an object.
void check_pull_progress(std::string_view body, std::string_view image);
// GET /containers/json: [{"Id": non-empty string, "State": string, "Labels": {string: string}}], State and
// Labels optional.
std::vector<ContainerSummary> parse_container_list(std::string_view body, std::string_view label_filter);
// An error reply's {"message": string}, else the start of the body as it is. Never throws.
std::string parse_error_message(std::string_view body);

// ---- registry credentials for pulls (pure; unit-tested) ------------------------------------------
// A Docker CLI config.json's `auths` entries, matched to an image's registry the way the docker CLI does,
// and sent to the engine as X-Registry-Auth on POST /images/create. Credential helpers are not run.

// The registry an image reference names, as the docker CLI reads it: the first path component when it has
// a '.' or a ':' or is "localhost" ("ghcr.io/org/img:1" -> "ghcr.io", "127.0.0.1:5000/a" ->
// "127.0.0.1:5000"), else Docker Hub. Docker Hub is always "docker.io".
std::string registry_of(std::string_view image);
// An `auths` key as the registry it stands for: the scheme and any path dropped, Docker Hub's aliases
// (index.docker.io, registry-1.docker.io, https://index.docker.io/v1/) as "docker.io".
std::string registry_key(std::string_view server);

// One registry's credentials. Secret: never logged, never in an exception's text.
struct RegistryCredential {
  std::string registry;  // registry_key of the `auths` key
  std::string username;
  std::string password;
  std::string identity_token;  // set: sent instead of username and password
};

// A config.json entry this watcher will not use, or a malformed part of the file: the key ("auths.ghcr.io",
// "credHelpers.ghcr.io", "credsStore") and why. Never quotes a secret.
struct RegistryAuthProblem {
  std::string key;
  std::string reason;
};

// Every registry's credentials from one config.json.
struct RegistryAuths {
  std::vector<RegistryCredential> credentials;
  // The credentials for `image`'s registry (registry_of), or nullptr: the pull is anonymous.
  const RegistryCredential* find(std::string_view image) const;
};

// Reads a Docker CLI config.json (pure). `auths` entries give `auth` (base64 "user:password"),
// `username` and `password`, or `identitytoken`; other keys of the file (proxies, psFormat, ...) are left
// alone. `credsStore` and every `credHelpers` entry are refused: helpers are programs this watcher does not
// run. Returns every problem found, or the credentials (possibly none).
std::expected<RegistryAuths, std::vector<RegistryAuthProblem>> parse_docker_config(std::string_view text);

// Reads and parses the config.json at `path`; a file that cannot be read is one problem with an empty key.
std::expected<RegistryAuths, std::vector<RegistryAuthProblem>> load_docker_config(const std::string& path);

// X-Registry-Auth's value (pure): base64url (padded) JSON {"username","password","serveraddress"}, or
// {"identitytoken","serveraddress"} when the credential carries a token.
std::string registry_auth_header(const RegistryCredential& credential);

// ---- the client ---------------------------------------------------------------------------------
class Client {
 public:
  // Talks to the engine on `socket_path`; one keep-alive connection, not thread-safe (one per thread).
  explicit Client(std::string socket_path = std::string(kDefaultSocket));
  Client(std::unique_ptr<http::Transport> transport, std::string socket_path);

  const std::string& socket_path() const { return socket_path_; }

  void ping();
  VersionInfo version();
  std::optional<ImageInfo> inspect_image(const std::string& image);
  // Pulls `image`; with `registry_auth_file` (a Docker config.json, read again for every pull) its registry's
  // credentials go with the request. Throws ImageMissing naming the image, its registry and the engine's
  // reason (e.g. "unauthorized: authentication required"); never a credential.
  void pull_image(const std::string& image, const std::string& registry_auth_file = "");
  // Makes the image available per `policy`; throws ImageMissing naming the image when it cannot. No
  // default for `registry_auth_file` (empty: anonymous): every caller says which credentials it pulls with.
  ImageInfo ensure_image(const std::string& image, PullPolicy policy, const std::string& registry_auth_file);

  std::string create_container(const ContainerSpec& spec, const std::string& name = "");
  void start(const std::string& id);
  // Streams the container's output until it exits, `deadline` passes (then kills it), or a cap is hit
  // (then kills it). The container must be started; its log driver must be json-file.
  CapturedOutput follow_output(const std::string& id, OutputCaps caps,
                               std::chrono::steady_clock::time_point deadline, bool* deadline_hit);
  // Waits for exit; kills the container when `deadline` passes first.
  WaitResult wait(const std::string& id, std::chrono::steady_clock::time_point deadline);
  void kill(const std::string& id, const std::string& signal = "KILL");
  // Sends `signal` to the container's PID 1; false when the container is not running (or is gone).
  bool send_signal(const std::string& id, const std::string& signal);
  ContainerState inspect(const std::string& id);
  // Force-removes the container and its anonymous volumes; a container already gone is not an error.
  void remove(const std::string& id);
  std::vector<ContainerSummary> list_by_label(const std::string& label_filter);
  // Removes every container carrying `label_filter` ("key=value" or "key"); returns how many.
  int remove_by_label(const std::string& label_filter);

 private:
  http::Response call(const std::string& method, const std::string& path, const std::string& body = "",
                      std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
  [[noreturn]] void fail(const std::string& what, const http::Response& response);

  std::unique_ptr<http::Transport> transport_;
  std::string socket_path_;
};

// Removes the container it holds on every path out of a scope, unless released.
class ContainerGuard {
 public:
  ContainerGuard(Client& client, std::string id) : client_(&client), id_(std::move(id)) {}
  ContainerGuard(const ContainerGuard&) = delete;
  ContainerGuard& operator=(const ContainerGuard&) = delete;
  ~ContainerGuard();
  const std::string& id() const { return id_; }
  std::string release() { return std::exchange(id_, {}); }

 private:
  Client* client_;
  std::string id_;
};

}  // namespace xqw::docker
