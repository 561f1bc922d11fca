// config: loads and validates a config root (-d DIR): manager settings, named XQueue servers, queues.
// Owns both file forms (native YAML, upstream xqueue-watcher JSON), limit parsing, bounds and secrets.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "docker/docker.hpp"
#include "verdicts/verdicts.hpp"

namespace xqw::config {

inline constexpr std::int64_t KiB = 1024;
inline constexpr std::int64_t MiB = 1024 * KiB;
inline constexpr std::int64_t GiB = 1024 * MiB;

inline constexpr std::string_view kDefaultImage = "xqueue-watcher/python-grader:latest";

// Every grading container's limits. The defaults are the strict ones; a queue may change them
// within the operator's bounds.
struct Limits {
  std::int64_t memory_bytes = 256 * MiB;  // Memory and MemorySwap (equal: no swap)
  double cpus = 1.0;                      // NanoCpus = cpus * 1e9
  std::int64_t pids = 128;
  std::chrono::milliseconds timeout{20000};  // wall clock, create to exit
  std::int64_t stdout_bytes = 1 * MiB;
  std::int64_t stderr_bytes = 256 * KiB;
  std::int64_t tmpfs_bytes = 64 * MiB;
  std::int64_t nofile = 256;
  std::int64_t fsize_bytes = 64 * MiB;      // ulimit fsize
  std::int64_t submission_bytes = 1 * MiB;  // larger submissions are rejected with a clear message
  bool network = false;
  std::string runtime;  // empty: the engine's default runtime; e.g. "runsc"
  std::string user;     // empty: decided by the image (DESIGN.md s.6); never root
  bool operator==(const Limits&) const = default;
};

// Files uploaded with a submission (XQueue's xqueue_files: {original name: URL}), fetched by the watcher
// before grading and handed to the container in its job directory.
struct FilesConfig {
  std::int64_t max_count = 10;               // files per submission; 0: this queue takes no files
  std::int64_t max_size_bytes = 1 * MiB;     // each file
  std::int64_t max_total_bytes = 4 * MiB;    // all of a submission's files together
  std::chrono::milliseconds timeout{10000};  // each file's download
  std::string base_url;                      // relative URLs resolve against it; empty: the XQueue server URL
  std::vector<std::string> allowed_hosts;    // hosts besides base_url's: "host", "host:port", "*.example.org"
  bool operator==(const FilesConfig&) const = default;
};

// Upper bounds the operator sets in xqwatcher.yaml; no queue (nor the defaults) may exceed them.
// An unset maximum means "no bound".
struct LimitBounds {
  std::optional<std::int64_t> memory_bytes;
  std::optional<double> cpus;
  std::optional<std::int64_t> pids;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::int64_t> stdout_bytes;
  std::optional<std::int64_t> stderr_bytes;
  std::optional<std::int64_t> tmpfs_bytes;
  std::optional<std::int64_t> nofile;
  std::optional<std::int64_t> fsize_bytes;
  std::optional<std::int64_t> submission_bytes;
  bool network_allowed = false;               // may a queue turn network on?
  std::vector<std::string> allowed_runtimes;  // empty: any runtime the engine offers
  // `bounds.files`: the FilesConfig numbers.
  std::optional<std::int64_t> file_count;
  std::optional<std::int64_t> file_size_bytes;
  std::optional<std::int64_t> file_total_bytes;
  std::optional<std::chrono::milliseconds> file_timeout;
};

// Which server answers at `url`: the old XQueue server, or the LMS's own /xqueue/ API (edx-submissions),
// which uses real HTTP status codes, has no get_queuelen and stores only integer points.
enum class ServerApi { XQueue, Lms };

struct ServerConfig {
  std::string name;  // key in xqueue_servers, or "<queue>" for a server given inline
  std::string url;
  std::string username;
  std::string password;
  ServerApi api = ServerApi::XQueue;
};

// Posting integer points out of the problem's points_possible, for servers that store only points
// (the LMS): score = round(fraction * points) by `rounding`.
enum class PointsRounding { Nearest, Down, Up };
struct ScorePoints {
  int points = 1;
  PointsRounding rounding = PointsRounding::Nearest;
  bool operator==(const ScorePoints&) const = default;
};

// Outcomes whose student-facing message a queue may replace: the registry's overridable verdicts
// (verdicts/verdicts.hpp). `{limit}` in a template becomes the limit that was hit, in words ("20 s",
// "256 MiB").
inline constexpr const auto& kMessageVerdicts = verdicts::kOverridableLabels;

// How far ahead a queue prepares the container for its next submission (one container per submission,
// never reused): not at all, created (limits and mounts applied), or started and waiting for its job
// (images that declare the job-signal label; others fall back to created).
enum class Precreate { Off, Created, Started };
std::string_view precreate_name(Precreate precreate);

// The container contract a queue's image speaks. Native: this project's (DESIGN.md s.6: `/grader` and
// `/job` mounts, one JSON object on stdout, mount points from the image's labels). Upstream: the Python
// xqueue-watcher's ContainerGrader ("grader container protocol": the problem at `/graders`, the
// submission in SUBMISSION_CODE, the result on the last line of stdout), so images built for it run
// unchanged.
enum class ContractKind { Native, Upstream };
std::string_view contract_name(ContractKind contract);

// True for this project's Python grader image (repository xqueue-watcher/python-grader, any registry,
// tag or digest): an upstream conf.d naming it keeps the native contract.
bool is_python_grader_image(std::string_view reference);

struct QueueConfig {
  std::string name;    // queue name at XQueue (NAME_OVERRIDE / `name`, else the key)
  std::string source;  // file it came from
  ServerConfig server;
  int connections = 1;
  std::filesystem::path grader_root;              // absolute, canonical, on this host
  std::filesystem::path docker_host_grader_root;  // optional: the same directory as the engine sees it
  std::string image = std::string(kDefaultImage);
  docker::PullPolicy pull_policy = docker::PullPolicy::IfNotPresent;  // parsed once, from the file
  Limits limits;
  std::map<std::string, std::string> messages;  // verdict (kMessageVerdicts) -> template with {limit}
  FilesConfig files;                            // uploaded files (xqueue_files)
  bool from_jailed_grader = false;              // upstream JailedGrader (or unknown handler) mapped here
  Precreate precreate = Precreate::Started;
  ContractKind contract = ContractKind::Native;
  // Upstream contract only because a JSON conf.d's ContainerGrader KWARGS name an image (not written
  // as `contract:`); an image that declares this project's labels keeps the native one (see grading).
  bool contract_implied = false;
  int weight = 1;       // share of the running-container capacity when queues compete for it
  int max_running = 0;  // containers this queue may run at once; 0: no per-queue cap
  // Used when the grader_payload does not say (the LMS's API rebuilds the payload without them).
  std::string lang = "en";
  bool hide_output = false;
  std::optional<ScorePoints> points;  // unset: the 0..1 score is posted as the grader gave it
};

struct ManagerConfig {
  std::chrono::milliseconds poll_interval{1000};                       // upstream POLL_INTERVAL 1
  std::chrono::milliseconds login_poll_interval{5000};                 // upstream LOGIN_POLL_INTERVAL 5
  std::chrono::milliseconds requests_timeout{1000};                    // upstream REQUESTS_TIMEOUT 1
  std::optional<std::pair<std::string, std::string>> http_basic_auth;  // username, password
  bool follow_client_redirects = false;
  bool verify_tls = true;
  std::string ca_file;
  std::string docker_socket = std::string(docker::kDefaultSocket);  // resolved: see resolve_engine_socket
  // A Docker config.json whose `auths` go with image pulls; empty: anonymous pulls. Resolved: see
  // resolve_registry_auth_file.
  std::string registry_auth_file;
  std::filesystem::path work_dir = "/var/lib/xqueue-watcher/jobs";  // per-job directories
  std::filesystem::path journal_dir = "/var/lib/xqueue-watcher/journal";
  std::filesystem::path docker_host_work_dir;  // optional: work_dir as the engine's host sees it
  std::chrono::milliseconds shutdown_grace{30000};
  int metrics_port = 9090;         // 0 = off
  int max_running_containers = 0;  // containers running at once, all queues; 0: the engine host's CPU count
  Limits default_limits;
  LimitBounds bounds;
  std::string default_image = std::string(kDefaultImage);
  docker::PullPolicy default_pull_policy = docker::PullPolicy::IfNotPresent;
  std::map<std::string, std::string> default_messages;
  FilesConfig default_files;
  // Every queue's docker_host_grader_root unless it sets its own (XQWATCHER_DOCKER_HOST_GRADER_ROOT only).
  std::filesystem::path default_docker_host_grader_root;
};

// One finding: "file:line: key: reason" (line only when known; key is a dotted path such as
// `queues.demo.limits.memory` or `test-123.HANDLERS[0].KWARGS.grader_root`).
struct Problem {
  std::string file, key, reason;
  int line = 0;
  std::string to_string() const;
};

struct Config {
  ManagerConfig manager;
  std::vector<QueueConfig> queues;
};

struct LoadResult {
  std::optional<Config> config;  // set only when `errors` is empty
  std::vector<Problem> errors, warnings;
  bool ok() const { return errors.empty(); }
};

// Where `${VAR}` references are looked up; tests substitute a map.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_environment();
// The names of the variables that start with `prefix` (the Python watcher's XQWATCHER_ settings are
// looked for this way); tests substitute the names of their map.
using EnvNames = std::function<std::vector<std::string>(std::string_view prefix)>;
EnvNames process_environment_names();

// The Docker engine's unix socket, resolved in this one place for the watcher and `grade` alike:
// xqwatcher's `docker_socket` when the file names one (`configured`), else DOCKER_HOST=unix://PATH, else
// docker::kDefaultSocket. A DOCKER_HOST the engine client cannot use (tcp://, ssh://, a bare path) is not
// guessed at: `warning` names it and why, and the default socket is used. load_config_root puts the
// result in ManagerConfig::docker_socket (and the warning among its warnings).
struct EngineSocket {
  std::string path;
  std::optional<Problem> warning;  // key DOCKER_HOST
};
EngineSocket resolve_engine_socket(const EnvLookup& env, const std::optional<std::string>& configured);

// The Docker config.json whose `auths` go with image pulls, resolved in this one place for the watcher and
// `grade` alike: xqwatcher's `registry_auth_file` when the file names one (`configured`), else
// $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set (as the docker CLI reads it), else none: pulls are
// anonymous (~/.docker is never read implicitly). The chosen file is parsed (docker::load_docker_config):
// each problem is an error naming that file and its key (`credHelpers.ghcr.io`, `auths.x.auth`); a
// DOCKER_CONFIG without config.json, or a file with no credentials, is a warning.
struct RegistryAuthFile {
  std::string path;  // empty: anonymous pulls
  std::vector<Problem> errors, warnings;
};
RegistryAuthFile resolve_registry_auth_file(const EnvLookup& env,
                                            const std::optional<std::string>& configured);

// Why the Docker engine could not say which runtimes it offers (it did not answer, or listed none).
struct RuntimesUnknown {
  std::string reason;
};
// The OCI runtimes the Docker engine offers (its /info "Runtimes"), or why it could not be asked.
using EngineRuntimes = std::expected<std::vector<std::string>, RuntimesUnknown>;
using RuntimeLookup = std::function<EngineRuntimes(const std::string& docker_socket)>;
// Asks the engine on `docker_socket` (docker::Client::version()).
RuntimeLookup engine_runtime_lookup();

struct LoadOptions {
  EnvLookup env = process_environment();
  EnvNames env_names = process_environment_names();
  // Used by check_config only, and only when a queue names a runtime; tests substitute their own.
  RuntimeLookup runtimes = engine_runtime_lookup();
};

// Loads DIR/xqwatcher.{yaml,yml,json}, DIR/xqueue_servers.{yaml,yml,json}, DIR/conf.d/*.{yaml,yml,json}
// (.json files in upstream's form, YAML in the native form). Missing manager or servers files mean
// defaults / no named servers. Relative paths (grader_root, work_dir, password_file, ...) resolve
// against the directory of the file that names them. Strings may use ${VAR} and ${VAR:-fallback}.
// Never throws for bad input: collects every problem it can find in one pass.
LoadResult load_config_root(const std::filesystem::path& dir, const LoadOptions& options = {});

// One error per queue whose limits.runtime is not among `offered` (pure): the engine would refuse
// every container of that queue.
std::vector<Problem> unknown_runtimes(const Config& config, const std::vector<std::string>& offered);

// `check-config`: prints every error and warning, then a one-line verdict; returns the exit code
// (0 valid, 1 invalid). When a queue names a runtime and the engine answers, a runtime the engine
// does not offer is an error; when the engine does not answer, a warning says runtimes went unchecked.
int check_config(const std::filesystem::path& dir, std::ostream& out, const LoadOptions& options = {});

// ---- the per-queue limits: one row each ----
// How a limit is written and shown.
enum class LimitKind {
  Size,      // "256Mi"; shown "256 MiB"
  Count,     // "128"
  Cpus,      // "0.5", "500m"; shown "0.5 CPUs"
  Duration,  // "20s"; shown "20s" to operators, "20 s" to students
  Flag,      // true / false
  Text,      // a name
};
using LimitMember = std::variant<std::int64_t Limits::*, double Limits::*,
                                 std::chrono::milliseconds Limits::*, bool Limits::*, std::string Limits::*>;
// A numeric limit's upper bound in LimitBounds; monostate for the limits `LimitField::check` bounds.
using BoundMember = std::variant<std::monostate, std::optional<std::int64_t> LimitBounds::*,
                                 std::optional<double> LimitBounds::*,
                                 std::optional<std::chrono::milliseconds> LimitBounds::*>;

// One key of `limits:` (a queue's, `defaults.limits`). Its built-in default is the member's initializer in
// Limits; everything else config does with it (parsing, the minimum, the bound under `bounds:`, what
// check-config prints, how a student message quotes it) comes from this row.
struct LimitField {
  std::string_view key;
  LimitKind kind;
  LimitMember member;
  // Size, Count: the least value the engine takes (Docker needs 6 MiB of memory; a pids limit of 0
  // means unlimited); Duration: milliseconds.
  std::int64_t minimum = 0;
  BoundMember bound = {};      // `bounds.<bound_key>`: a numeric upper bound
  std::string_view bound_key;  // its key under `bounds:`; empty: none
  // Flag and Text rules: why `limits` breaks this field's rule under `bounds` (nullptr bounds: the value
  // alone), or nullopt.
  std::optional<std::string> (*check)(const Limits& limits, const LimitBounds* bounds) = nullptr;
};
// Every limit, in the order documented (docs/operators.md) and printed by check-config.
std::span<const LimitField> limit_fields();
const LimitField* limit_field(std::string_view key);
// `limits.<key>` as an operator writes it ("256 MiB", "0.5", "20s", "true", "runsc"); empty for empty text.
std::string show_limit(const Limits& limits, const LimitField& field);
// `limits.<key>` in a student message ("256 MiB", "20 s", "128"); empty when the key is not a numeric
// limit or its value is not known (0 or less).
std::string quote_limit(const Limits& limits, std::string_view key);

// ---- limit parsing: pure; an error is the reason, naming the text ----
template <typename T>
using Parsed = std::expected<T, std::string>;

// "256Mi", "1Gi", "512Ki", "1048576", "64MB", "512k". Ki/Mi/Gi/Ti (and KiB..TiB) are powers of 1024;
// k/K, M, G, T (and KB..TB) are powers of 1000, as in Kubernetes quantities. A lone lowercase "m"
// is refused: Kubernetes reads it as milli, Docker as mebi.
Parsed<std::int64_t> parse_bytes(std::string_view text);
// "0.5", "2", "500m" (millicores).
Parsed<double> parse_cpus(std::string_view text);
// "20s", "500ms", "2m", "1.5s", "1h", "1m30s"; a bare number is seconds.
Parsed<std::chrono::milliseconds> parse_duration(std::string_view text);
// A non-negative whole number ("128").
Parsed<std::int64_t> parse_count(std::string_view text);

// For operators (check-config, log lines), in the notation the parsers read back: "256 MiB", "1.5 GiB",
// "900 bytes"; "20s", "1m30s", "500ms"; "0.5". The one formatter (verdicts/) also words student messages.
using verdicts::format_bytes;
using verdicts::format_cpus;
using verdicts::format_duration_as_written;

}  // namespace xqw::config
