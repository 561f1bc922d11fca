// config (internal): the file schemas. Native YAML (lowercase keys, per-queue limits) and upstream
// xqueue-watcher JSON (SERVER/SERVER_REF/AUTH/HANDLERS/KWARGS) both produce the same drafts.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "config/tree.hpp"

namespace xqw::config::detail {

// A queue before its server reference is resolved against xqueue_servers.
struct QueueDraft {
  QueueConfig queue;
  std::string server_ref;        // name in xqueue_servers; empty when the server was given inline
  std::string key;               // dotted key of the queue ("queues.demo", "test-123")
  std::string server_key;        // key naming the server, for "unknown server" errors
  int server_line = 0;           // where the server is named (the tree itself is gone by then)
  bool implicit_server = false;  // no server named: "default" is assumed
  int line = 0;
};

using ServerTable = std::map<std::string, ServerConfig>;

// xqwatcher.{yaml,yml} and xqwatcher.json.
void read_manager_native(Reader& reader, const Node& root, ManagerConfig& manager);
void read_manager_upstream(Reader& reader, const Node& root, ManagerConfig& manager);

// xqueue_servers.{yaml,yml} and xqueue_servers.json.
void read_servers_native(Reader& reader, const Node& root, ServerTable& servers);
void read_servers_upstream(Reader& reader, const Node& root, ServerTable& servers);

// conf.d/*.{yaml,yml} (native `queues:`, or upstream's old `CLIENTS:` list) and conf.d/*.json.
void read_queues_native(Reader& reader, const Node& root, const ManagerConfig& manager,
                        std::vector<QueueDraft>& drafts);
void read_queues_upstream(Reader& reader, const Node& root, const ManagerConfig& manager,
                          std::vector<QueueDraft>& drafts);

// ---- the Python watcher's XQWATCHER_* environment settings (environment.cpp) ----
// The manager file as read, so that a setting the file makes wins over the environment.
struct ManagerFile {
  std::filesystem::path path;  // empty: there is none
  const Node* root = nullptr;  // nullptr: none, or it did not parse
  bool upstream = false;       // xqwatcher.json (upstream keys) rather than xqwatcher.yaml
};
// Maps every XQWATCHER_* variable `names` lists onto `manager` (after the manager file is read, before
// the queues), or records why not; findings name the file "environment" and the variable.
void apply_xqwatcher_environment(const EnvLookup& env, const EnvNames& names, const ManagerFile& file,
                                 ManagerConfig& manager, Findings& findings);
// XQWATCHER_DOCKER_HOST_GRADER_ROOT stands for one grader_root: an error when queues relying on it differ.
void check_environment_host_grader_root(const ManagerConfig& manager, const std::vector<QueueConfig>& queues,
                                        Findings& findings);

// ---- shared pieces (limits_schema.cpp) ----
// Native names of the limit fields, as written under `limits:` and `bounds:`.
const std::vector<std::string_view>& limit_field_names();
const std::vector<std::string_view>& bound_field_names();

// Reads one limit (`field` is a native name) onto `limits`; when `bounds` is given, a value above
// its bound is an error at `key`.
void read_limit(Reader& reader, const Node& value, const std::string& key, std::string_view field,
                Limits& limits, const LimitBounds* bounds);
void read_limits(Reader& reader, const Node& map, const std::string& key, Limits& limits,
                 const LimitBounds* bounds);
void read_bounds(Reader& reader, const Node& map, const std::string& key, LimitBounds& bounds);
// Every field of `limits` against `bounds` (used for the operator's defaults, built-in or written).
void check_limits_within_bounds(Reader& reader, const Node& at, const std::string& key, const Limits& limits,
                                const LimitBounds& bounds);

void read_messages(Reader& reader, const Node& map, const std::string& key,
                   std::map<std::string, std::string>& messages);
std::optional<std::filesystem::path> read_grader_root(Reader& reader, const Node& node,
                                                      const std::string& key);
// A path as the engine's host sees it: must be absolute; never resolved against this host.
std::optional<std::filesystem::path> read_host_path(Reader& reader, const Node& node, const std::string& key);
std::optional<std::string> read_image(Reader& reader, const Node& node, const std::string& key);
// A native `pull_policy`: never, if-not-present or always (docker::parse_pull_policy's names).
std::optional<docker::PullPolicy> read_pull_policy(Reader& reader, const Node& node, const std::string& key);
// A queue's `precreate`: started (or true), created, or false (or off).
std::optional<Precreate> read_precreate(Reader& reader, const Node& node, const std::string& key);
// A server's `api`: xqueue or lms.
std::optional<ServerApi> read_server_api(Reader& reader, const Node& node, const std::string& key);
// A queue's `points_rounding`: nearest, down or up.
std::optional<PointsRounding> read_points_rounding(Reader& reader, const Node& node, const std::string& key);
// A queue's `contract`: native or upstream.
std::optional<ContractKind> read_contract(Reader& reader, const Node& node, const std::string& key);
// An XQueue base URL (http:// or https://), without trailing slashes.
std::optional<std::string> read_url(Reader& reader, const Node& node, const std::string& key);
// A queue name as XQueue knows it.
bool check_queue_name(Reader& reader, const Node& at, const std::string& key, const std::string& name);
// A queue as both file forms start one: the manager's defaults, named `name` unless the map renames it
// under `rename_key` ("name" natively, "NAME_OVERRIDE" upstream); the name is checked.
QueueDraft new_queue_draft(Reader& reader, const Node& map, const std::string& key, const std::string& name,
                           std::string_view rename_key, const ManagerConfig& manager);

// ---- `files:` (files_schema.cpp) ----
// A `files:` map (a queue's, or defaults.files) onto `files`; when `bounds` is given, a number above its
// bound is an error at its key.
void read_files(Reader& reader, const Node& map, const std::string& key, FilesConfig& files,
                const LimitBounds* bounds);
// `bounds.files`: max_count, max_size, max_total, timeout.
void read_file_bounds(Reader& reader, const Node& map, const std::string& key, LimitBounds& bounds);
// Every number of `files` against `bounds` (the operator's defaults, built-in or written).
void check_files_within_bounds(Reader& reader, const Node& at, const std::string& key,
                               const FilesConfig& files, const LimitBounds& bounds);
// Why `entry` is not a usable files.allowed_hosts entry ("host", "host:port", "*.domain", "[v6]:port"),
// or nullopt (pure).
std::optional<std::string> allowed_host_problem(std::string_view entry);

}  // namespace xqw::config::detail
