// config (internal): the native YAML form: xqwatcher.yaml, xqueue_servers.yaml, conf.d/*.yaml `queues:`.
#include <algorithm>

#include "config/schema.hpp"

namespace xqw::config::detail {
namespace {

const std::vector<std::string_view> kManagerKeys = {
    "poll_interval",   "login_poll_interval",     "requests_timeout",
    "http_basic_auth", "follow_client_redirects", "verify_tls",
    "ca_file",         "docker_socket",           "work_dir",
    "journal_dir",     "docker_host_work_dir",    "shutdown_grace",
    "metrics_port",    "max_running_containers",  "defaults",
    "bounds",          "registry_auth_file"};
const std::vector<std::string_view> kDefaultsKeys = {"limits", "image", "pull_policy", "messages", "files"};
const std::vector<std::string_view> kServerKeys = {"url",           "api",      "username",
                                                   "username_file", "password", "password_file"};
const std::vector<std::string_view> kCredentialKeys = {"username", "username_file", "password",
                                                       "password_file"};
const std::vector<std::string_view> kQueueKeys = {"name",
                                                  "server",
                                                  "connections",
                                                  "grader_root",
                                                  "docker_host_grader_root",
                                                  "image",
                                                  "pull_policy",
                                                  "limits",
                                                  "messages",
                                                  "precreate",
                                                  "weight",
                                                  "max_running",
                                                  "lang",
                                                  "hide_output",
                                                  "points",
                                                  "points_rounding",
                                                  "files",
                                                  "contract"};

void read_positive_duration(Reader& reader, const Node& node, const std::string& key,
                            std::chrono::milliseconds& out, bool allow_zero = false) {
  const auto value = reader.duration(node, key);
  if (!value) return;
  if (value->count() < 0 || (value->count() == 0 && !allow_zero)) {
    return reader.error(node, key, "must be more than 0");
  }
  out = *value;
}

// unix:///path or /path; the engine is reached through a unix socket only.
void read_docker_socket(Reader& reader, const Node& node, const std::string& key, std::string& out) {
  auto text = reader.text(node, key);
  if (!text) return;
  if (text->rfind("unix://", 0) == 0) text = text->substr(7);
  if (text->find("://") != std::string::npos || text->empty() || (*text)[0] != '/') {
    return reader.error(node, key,
                        "'" + node.text + "' is not a unix socket path (e.g. /var/run/docker.sock)");
  }
  out = *text;
}

void read_defaults(Reader& reader, const Node& map, ManagerConfig& manager) {
  if (!reader.expect(map, Node::Kind::Map, "defaults")) return;
  reader.reject_unknown_keys(map, "defaults", kDefaultsKeys);
  // Checked against the bounds as a whole below, so that the built-in defaults are checked too.
  if (const Node* limits = map.find("limits"))
    read_limits(reader, *limits, "defaults.limits", manager.default_limits, nullptr);
  if (const Node* image = map.find("image")) {
    if (auto value = read_image(reader, *image, "defaults.image")) manager.default_image = *value;
  }
  if (const Node* policy = map.find("pull_policy")) {
    if (auto value = read_pull_policy(reader, *policy, "defaults.pull_policy"))
      manager.default_pull_policy = *value;
  }
  if (const Node* messages = map.find("messages")) {
    read_messages(reader, *messages, "defaults.messages", manager.default_messages);
  }
  // Checked against the bounds as a whole by the caller, as the limits are.
  if (const Node* files = map.find("files"))
    read_files(reader, *files, "defaults.files", manager.default_files, nullptr);
}

void read_basic_auth(Reader& reader, const Node& map, ManagerConfig& manager) {
  const std::string key = "http_basic_auth";
  if (map.kind == Node::Kind::Null) return;
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, kCredentialKeys);
  const auto errors_before = reader.error_count();
  const auto username = reader.secret(map, key, "username");
  const auto password = reader.secret(map, key, "password");
  if (reader.error_count() != errors_before) return;
  if (!username || !password) {
    return reader.error(map, key, "needs username (or username_file) and password (or password_file)");
  }
  manager.http_basic_auth = std::make_pair(*username, *password);
}

void read_server_entry(Reader& reader, const Node& map, const std::string& key, const std::string& name,
                       ServerConfig& server) {
  server.name = name;
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, kServerKeys);
  const auto errors_before = reader.error_count();
  if (const Node* url = map.find("url")) {
    if (auto value = read_url(reader, *url, join_key(key, "url"))) server.url = *value;
  } else {
    reader.error(map, join_key(key, "url"), "missing: the XQueue URL, e.g. http://127.0.0.1:18040");
  }
  const auto username = reader.secret(map, key, "username");
  const auto password = reader.secret(map, key, "password");
  if (reader.error_count() != errors_before) return;
  if (!username || username->empty()) {
    reader.error(map, join_key(key, "username"), "missing credentials: set username (or username_file)");
  }
  if (!password || password->empty()) {
    reader.error(map, join_key(key, "password"),
                 password ? "the password is empty"
                          : "missing credentials: set password (e.g. ${XQUEUE_PASSWORD}) or password_file");
  }
  server.username = username.value_or("");
  server.password = password.value_or("");
  if (const Node* api = map.find("api")) {
    if (auto value = read_server_api(reader, *api, join_key(key, "api"))) server.api = *value;
  }
}

// lang, hide_output, points, points_rounding: what grading and posting use when the payload is silent.
void read_course_defaults(Reader& reader, const Node& map, const std::string& key, QueueConfig& queue) {
  if (const Node* lang = map.find("lang")) {
    if (auto value = reader.text(*lang, join_key(key, "lang"))) {
      if (value->empty() || value->size() > 16) {
        reader.error(*lang, join_key(key, "lang"), "expected a language code such as en or fr");
      } else {
        queue.lang = *value;
      }
    }
  }
  if (const Node* hide = map.find("hide_output")) {
    if (auto value = reader.boolean(*hide, join_key(key, "hide_output"))) queue.hide_output = *value;
  }
  const Node* points = map.find("points");
  const Node* rounding = map.find("points_rounding");
  if (rounding && !points) {
    reader.error(*rounding, join_key(key, "points_rounding"), "has no effect without points");
  }
  if (!points) return;
  auto value = reader.integer(*points, join_key(key, "points"), 1, 100000);
  if (!value) return;
  ScorePoints score{.points = static_cast<int>(*value)};
  if (rounding) {
    auto how = read_points_rounding(reader, *rounding, join_key(key, "points_rounding"));
    if (!how) return;
    score.rounding = *how;
  }
  queue.points = score;
}

}  // namespace

void read_manager_native(Reader& reader, const Node& root, ManagerConfig& manager) {
  if (root.kind == Node::Kind::Null) return;  // an empty file: every default
  if (!reader.expect(root, Node::Kind::Map, "")) return;
  reader.reject_unknown_keys(root, "", kManagerKeys);
  // Bounds first: the defaults are checked against them.
  if (const Node* bounds = root.find("bounds")) read_bounds(reader, *bounds, "bounds", manager.bounds);
  if (const Node* defaults = root.find("defaults")) read_defaults(reader, *defaults, manager);
  const Node* defaults = root.find("defaults");
  const Node* default_limits = defaults ? defaults->find("limits") : nullptr;
  check_limits_within_bounds(reader, default_limits ? *default_limits : root, "defaults.limits",
                             manager.default_limits, manager.bounds);
  const Node* default_files = defaults ? defaults->find("files") : nullptr;
  check_files_within_bounds(reader, default_files ? *default_files : root, "defaults.files",
                            manager.default_files, manager.bounds);

  for (const auto& [name, value] : root.entries) {
    if (name == "poll_interval") read_positive_duration(reader, value, name, manager.poll_interval);
    if (name == "login_poll_interval")
      read_positive_duration(reader, value, name, manager.login_poll_interval);
    if (name == "requests_timeout") read_positive_duration(reader, value, name, manager.requests_timeout);
    if (name == "shutdown_grace") read_positive_duration(reader, value, name, manager.shutdown_grace, true);
    if (name == "http_basic_auth") read_basic_auth(reader, value, manager);
    if (name == "follow_client_redirects") {
      if (const auto flag = reader.boolean(value, name)) manager.follow_client_redirects = *flag;
    }
    if (name == "verify_tls") {
      if (const auto flag = reader.boolean(value, name)) manager.verify_tls = *flag;
      if (!manager.verify_tls)
        reader.warn(value, name, "TLS certificates are not verified; never do this in production");
    }
    if (name == "ca_file") {
      if (const auto path = reader.path(value, name)) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(*path, ec)) {
          reader.error(value, name, path->string() + " is not a readable file");
        } else {
          manager.ca_file = path->string();
        }
      }
    }
    if (name == "docker_socket") read_docker_socket(reader, value, name, manager.docker_socket);
    if (name == "registry_auth_file") {
      // Its content is checked once the file is chosen (load.cpp: resolve_registry_auth_file).
      if (const auto path = reader.path(value, name)) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(*path, ec)) {
          reader.error(value, name,
                       path->string() + " is not a readable file (a Docker config.json with auths)");
        } else {
          manager.registry_auth_file = path->string();
        }
      }
    }
    if (name == "work_dir") {
      if (const auto path = reader.path(value, name)) manager.work_dir = *path;
    }
    if (name == "journal_dir") {
      if (const auto path = reader.path(value, name)) manager.journal_dir = *path;
    }
    if (name == "docker_host_work_dir") {
      if (const auto path = read_host_path(reader, value, name)) manager.docker_host_work_dir = *path;
    }
    if (name == "metrics_port") {
      if (const auto port = reader.integer(value, name, 0, 65535))
        manager.metrics_port = static_cast<int>(*port);
    }
    if (name == "max_running_containers") {
      if (const auto cap = reader.integer(value, name, 0, 10000))
        manager.max_running_containers = static_cast<int>(*cap);
    }
  }
}

void read_servers_native(Reader& reader, const Node& root, ServerTable& servers) {
  if (root.kind == Node::Kind::Null) return;
  if (!reader.expect(root, Node::Kind::Map, "")) return;
  for (const auto& [name, value] : root.entries) {
    read_server_entry(reader, value, name, name, servers[name]);
  }
}

namespace {

void read_native_queue(Reader& reader, const std::string& key_name, const Node& map, const std::string& key,
                       const ManagerConfig& manager, std::vector<QueueDraft>& drafts) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, kQueueKeys);
  QueueDraft draft = new_queue_draft(reader, map, key, key_name, "name", manager);
  QueueConfig& queue = draft.queue;

  draft.server_key = join_key(key, "server");
  const Node* server = map.find("server");
  draft.server_line = server ? server->line : map.line;
  if (!server) {
    draft.server_ref = "default";  // the conventional name; resolved (or reported) later
    draft.implicit_server = true;
  } else if (server->kind == Node::Kind::Map) {
    read_server_entry(reader, *server, draft.server_key, "<" + key_name + ">", queue.server);
  } else if (auto ref = reader.text(*server, draft.server_key)) {
    if (ref->empty()) reader.error(*server, draft.server_key, "the server name is empty");
    draft.server_ref = ref->empty() ? "default" : *ref;
  }

  if (const Node* connections = map.find("connections")) {
    if (auto value = reader.integer(*connections, join_key(key, "connections"), 1, 1000)) {
      queue.connections = static_cast<int>(*value);
    }
  }
  if (const Node* root = map.find("grader_root")) {
    if (auto path = read_grader_root(reader, *root, join_key(key, "grader_root"))) queue.grader_root = *path;
  } else {
    reader.error(map, join_key(key, "grader_root"), "missing: the directory holding this queue's graders");
  }
  if (const Node* host_root = map.find("docker_host_grader_root")) {
    if (auto path = read_host_path(reader, *host_root, join_key(key, "docker_host_grader_root"))) {
      queue.docker_host_grader_root = *path;
    }
  }
  if (const Node* image = map.find("image")) {
    if (auto value = read_image(reader, *image, join_key(key, "image"))) queue.image = *value;
  }
  if (const Node* policy = map.find("pull_policy")) {
    if (auto value = read_pull_policy(reader, *policy, join_key(key, "pull_policy")))
      queue.pull_policy = *value;
  }
  if (const Node* limits = map.find("limits")) {
    read_limits(reader, *limits, join_key(key, "limits"), queue.limits, &manager.bounds);
  }
  if (const Node* messages = map.find("messages")) {
    read_messages(reader, *messages, join_key(key, "messages"), queue.messages);
  }
  if (const Node* precreate = map.find("precreate")) {
    if (auto value = read_precreate(reader, *precreate, join_key(key, "precreate"))) queue.precreate = *value;
  }
  if (const Node* contract = map.find("contract")) {
    if (auto value = read_contract(reader, *contract, join_key(key, "contract"))) queue.contract = *value;
  }
  if (const Node* precreate = map.find("precreate");
      precreate && queue.contract == ContractKind::Upstream && queue.precreate != Precreate::Off) {
    reader.warn(*precreate, join_key(key, "precreate"),
                "no effect with contract: upstream: the submission travels in the container's environment, "
                "fixed when it is created, so no container can be prepared ahead");
  }
  if (const Node* weight = map.find("weight")) {
    if (auto value = reader.integer(*weight, join_key(key, "weight"), 1, 1000))
      queue.weight = static_cast<int>(*value);
  }
  if (const Node* files = map.find("files")) {
    read_files(reader, *files, join_key(key, "files"), queue.files, &manager.bounds);
  }
  if (const Node* cap = map.find("max_running")) {
    if (auto value = reader.integer(*cap, join_key(key, "max_running"), 0, 10000)) {
      queue.max_running = static_cast<int>(*value);
    }
  }
  read_course_defaults(reader, map, key, queue);
  drafts.push_back(std::move(draft));
}

}  // namespace

void read_queues_native(Reader& reader, const Node& root, const ManagerConfig& manager,
                        std::vector<QueueDraft>& drafts) {
  if (root.kind == Node::Kind::Null) {
    reader.warn(root, "", "the file is empty: no queues");
    return;
  }
  if (!reader.expect(root, Node::Kind::Map, "")) return;
  if (root.find("CLIENTS")) {
    // Upstream's short-lived YAML form (CLIENTS/MANAGER/LOGGING): its clients are upstream queues.
    return read_queues_upstream(reader, root, manager, drafts);
  }
  for (const auto& [name, value] : root.entries) {
    if (name == "queues") continue;
    std::string reason = "unknown key; a conf.d YAML file holds `queues:`";
    if (value.kind == Node::Kind::Map && value.find("HANDLERS")) {
      reason += " (this looks like an upstream queue: put it in a .json file, or write it under queues:)";
    } else if (const auto suggestion = closest(name, {"queues"}); !suggestion.empty()) {
      reason += " (did you mean 'queues'?)";
    }
    reader.error(value, name, reason);
  }
  const Node* queues = root.find("queues");
  if (!queues) return;
  if (queues->kind == Node::Kind::Null) return reader.warn(*queues, "queues", "no queues listed");
  if (!reader.expect(*queues, Node::Kind::Map, "queues")) return;
  for (const auto& [name, value] : queues->entries) {
    read_native_queue(reader, name, value, join_key("queues", name), manager, drafts);
  }
}

}  // namespace xqw::config::detail
