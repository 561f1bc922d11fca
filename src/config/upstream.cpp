// config (internal): the Python xqueue-watcher's own files, read unchanged: xqwatcher.json,
// xqueue_servers.json, conf.d/*.json (SERVER/SERVER_REF/AUTH/CONNECTIONS/NAME_OVERRIDE/HANDLERS).

#include "config/schema.hpp"
#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::config::detail {
namespace {

constexpr std::string_view kContainerGrader = "xqueue_watcher.containergrader.ContainerGrader";
constexpr std::string_view kJailedGrader = "xqueue_watcher.jailedgrader.JailedGrader";
// Upstream's client default when a queue names no SERVER (manager.py).
constexpr std::string_view kUpstreamDefaultServer = "http://localhost:18040";

const std::vector<std::string_view> kManagerKeys = {"HTTP_BASIC_AUTH",     "POLL_TIME",
                                                    "REQUESTS_TIMEOUT",    "POLL_INTERVAL",
                                                    "LOGIN_POLL_INTERVAL", "FOLLOW_CLIENT_REDIRECTS"};
const std::vector<std::string_view> kServerKeys = {"SERVER", "AUTH"};
const std::vector<std::string_view> kQueueKeys = {"SERVER",   "SERVER_REF",    "AUTH", "CONNECTIONS",
                                                  "HANDLERS", "NAME_OVERRIDE", "CLASS"};
const std::vector<std::string_view> kClientKeys = {"QUEUE_NAME",  "SERVER",   "SERVER_REF",    "AUTH",
                                                   "CONNECTIONS", "HANDLERS", "NAME_OVERRIDE", "CLASS"};
const std::vector<std::string_view> kHandlerKeys = {"HANDLER", "KWARGS", "CODEJAIL", "SANDBOX"};
// ContainerGrader's constructor, plus what it passes on to Grader.
const std::vector<std::string_view> kContainerKwargs = {"grader_root",
                                                        "image",
                                                        "backend",
                                                        "namespace",
                                                        "cpu_limit",
                                                        "memory_limit",
                                                        "timeout",
                                                        "image_pull_policy",
                                                        "poll_image_digest",
                                                        "digest_poll_interval",
                                                        "docker_host_grader_root",
                                                        "fork_per_item",
                                                        "logger_name"};
const std::vector<std::string_view> kJailedKwargs = {"grader_root", "codejail_python", "fork_per_item",
                                                     "logger_name"};

// [username, password], each ${ENV}-expanded.
std::optional<std::pair<std::string, std::string>> read_auth_pair(Reader& reader, const Node& node,
                                                                  const std::string& key) {
  if (!reader.expect(node, Node::Kind::List, key)) return std::nullopt;
  if (node.items.size() != 2) {
    reader.error(node, key,
                 "expected [username, password], got a list of " + std::to_string(node.items.size()));
    return std::nullopt;
  }
  auto username = reader.text(node.items[0], index_key(key, 0));
  auto password = reader.text(node.items[1], index_key(key, 1));
  if (!username || !password) return std::nullopt;
  if (username->empty()) {
    reader.error(node, index_key(key, 0), "missing credentials: the username is empty");
    return std::nullopt;
  }
  if (password->empty()) {
    reader.error(node, index_key(key, 1), "missing credentials: the password is empty");
    return std::nullopt;
  }
  return std::make_pair(*username, *password);
}

void read_seconds(Reader& reader, const Node& node, const std::string& key, std::chrono::milliseconds& out) {
  const auto value = reader.duration(node, key);
  if (!value) return;
  if (value->count() <= 0) return reader.error(node, key, "must be more than 0 seconds");
  out = *value;
}

// KWARGS.image_pull_policy in Kubernetes' spelling (Always, IfNotPresent, Never; any case).
void read_pull_policy_upstream(Reader& reader, const Node& node, const std::string& key,
                               docker::PullPolicy& out) {
  const auto text = reader.text(node, key);
  if (!text) return;
  const std::string lowered = ascii_lower(*text);
  if (lowered == "always")
    out = docker::PullPolicy::Always;
  else if (lowered == "ifnotpresent")
    out = docker::PullPolicy::IfNotPresent;
  else if (lowered == "never")
    out = docker::PullPolicy::Never;
  else
    reader.error(node, key, "unknown pull policy '" + *text + "' (use Always, IfNotPresent or Never)");
}

void read_limit_kwarg(Reader& reader, const Node& kwargs, const std::string& kwargs_key,
                      std::string_view kwarg, std::string_view field, Limits& limits,
                      const LimitBounds& bounds) {
  if (const Node* value = kwargs.find(kwarg)) {
    read_limit(reader, *value, join_key(kwargs_key, kwarg), field, limits, &bounds);
  }
}

void read_container_kwargs(Reader& reader, const Node& kwargs, const std::string& key,
                           const ManagerConfig& manager, QueueConfig& queue) {
  reader.reject_unknown_keys(kwargs, key, kContainerKwargs);
  if (const Node* image = kwargs.find("image")) {
    if (auto value = read_image(reader, *image, join_key(key, "image"))) {
      queue.image = *value;
      // An image built for the Python watcher speaks its contract; this project's own image does not.
      if (!is_python_grader_image(*value)) {
        queue.contract = ContractKind::Upstream;
        queue.contract_implied = true;
      }
    }
  }
  if (const Node* backend = kwargs.find("backend")) {
    if (const auto value = reader.text(*backend, join_key(key, "backend"))) {
      if (*value == "kubernetes") {
        reader.warn(*backend, join_key(key, "backend"),
                    "grading runs in containers on the Docker engine this watcher is connected to, not as "
                    "Kubernetes Jobs");
      } else if (*value != "docker") {
        reader.error(*backend, join_key(key, "backend"),
                     "unsupported backend '" + *value + "' (upstream accepts kubernetes or docker)");
      }
    }
  }
  if (const Node* ns = kwargs.find("namespace")) {
    reader.warn(*ns, join_key(key, "namespace"),
                "ignored: Kubernetes namespaces do not apply to the Docker engine");
  }
  for (const std::string_view digest_kwarg : {"poll_image_digest", "digest_poll_interval"}) {
    if (const Node* poll = kwargs.find(digest_kwarg)) {
      reader.warn(*poll, join_key(key, digest_kwarg),
                  "ignored: use pull_policy always (image_pull_policy: Always) to follow a moving tag");
    }
  }
  read_limit_kwarg(reader, kwargs, key, "cpu_limit", "cpus", queue.limits, manager.bounds);
  read_limit_kwarg(reader, kwargs, key, "memory_limit", "memory", queue.limits, manager.bounds);
  read_limit_kwarg(reader, kwargs, key, "timeout", "timeout", queue.limits, manager.bounds);
  if (const Node* policy = kwargs.find("image_pull_policy")) {
    read_pull_policy_upstream(reader, *policy, join_key(key, "image_pull_policy"), queue.pull_policy);
  }
  if (const Node* host_root = kwargs.find("docker_host_grader_root")) {
    if (host_root->kind != Node::Kind::Null) {
      if (auto path = read_host_path(reader, *host_root, join_key(key, "docker_host_grader_root"))) {
        queue.docker_host_grader_root = *path;
      }
    }
  }
}

void read_handler(Reader& reader, const Node& handler, const std::string& key, const ManagerConfig& manager,
                  QueueConfig& queue) {
  if (!reader.expect(handler, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(handler, key, kHandlerKeys);
  const Node* name_node = handler.find("HANDLER");
  if (!name_node) return reader.error(handler, join_key(key, "HANDLER"), "missing: the grader class to use");
  const auto name = reader.text(*name_node, join_key(key, "HANDLER"));
  if (!name) return;

  const std::string kwargs_key = join_key(key, "KWARGS");
  const Node empty_map{Node::Kind::Map};
  const Node* kwargs = handler.find("KWARGS");
  if (kwargs && !reader.expect(*kwargs, Node::Kind::Map, kwargs_key)) return;
  if (!kwargs) kwargs = &empty_map;

  if (*name == kContainerGrader) {
    read_container_kwargs(reader, *kwargs, kwargs_key, manager, queue);
  } else {
    queue.from_jailed_grader = true;
    queue.image = std::string(kDefaultImage);
    if (*name == kJailedGrader) {
      reader.warn(*name_node, join_key(key, "HANDLER"),
                  "JailedGrader runs in the bundled Python grader image (" + std::string(kDefaultImage) +
                      ") instead of CodeJail, with this queue's container limits");
      reader.reject_unknown_keys(*kwargs, kwargs_key, kJailedKwargs);
    } else {
      reader.warn(*name_node, join_key(key, "HANDLER"),
                  "unknown HANDLER '" + *name + "': only " + std::string(kContainerGrader) + " and " +
                      std::string(kJailedGrader) +
                      " are understood; grading in the bundled Python grader image (" +
                      std::string(kDefaultImage) + ")");
      for (const auto& [kwarg, value] : kwargs->entries) {
        if (kwarg != "grader_root") reader.warn(value, join_key(kwargs_key, kwarg), "ignored");
      }
    }
    if (const Node* codejail = handler.find("CODEJAIL")) {
      reader.warn(*codejail, join_key(key, "CODEJAIL"),
                  "ignored: submissions run in a container, not CodeJail");
    }
  }
  if (const Node* sandbox = handler.find("SANDBOX")) {
    reader.warn(*sandbox, join_key(key, "SANDBOX"), "ignored: submissions run in a container");
  }
  if (const Node* root = kwargs->find("grader_root")) {
    if (auto path = read_grader_root(reader, *root, join_key(kwargs_key, "grader_root")))
      queue.grader_root = *path;
  } else {
    reader.error(*kwargs, join_key(kwargs_key, "grader_root"),
                 "missing: the directory holding this queue's graders");
  }
}

void read_server_fields(Reader& reader, const Node& map, const std::string& key, QueueDraft& draft) {
  const Node* ref = map.find("SERVER_REF");
  const Node* server = map.find("SERVER");
  const Node* auth = map.find("AUTH");
  draft.server_line = ref ? ref->line : map.line;
  draft.server_key = join_key(key, ref ? "SERVER_REF" : "SERVER");
  if (ref) {
    if (server || auth) {
      reader.error(*ref, join_key(key, "SERVER_REF"), "SERVER_REF and SERVER/AUTH are mutually exclusive");
      return;
    }
    if (auto name = reader.text(*ref, draft.server_key)) {
      if (name->empty()) reader.error(*ref, draft.server_key, "the server name is empty");
      draft.server_ref = name->empty() ? "default" : *name;
    }
    return;
  }
  ServerConfig& inline_server = draft.queue.server;
  inline_server.name = "<" + draft.queue.name + ">";
  if (server) {
    if (auto url = read_url(reader, *server, join_key(key, "SERVER"))) inline_server.url = *url;
  } else {
    inline_server.url = std::string(kUpstreamDefaultServer);
    reader.warn(map, join_key(key, "SERVER"),
                "not set: using " + std::string(kUpstreamDefaultServer) + ", as upstream does");
  }
  if (!auth) {
    reader.error(map, join_key(key, "AUTH"),
                 "missing credentials: set AUTH [username, password] or SERVER_REF");
    return;
  }
  if (auto pair = read_auth_pair(reader, *auth, join_key(key, "AUTH"))) {
    inline_server.username = pair->first;
    inline_server.password = pair->second;
  }
}

void read_upstream_queue(Reader& reader, const std::string& name, const Node& map, const std::string& key,
                         const ManagerConfig& manager, std::vector<QueueDraft>& drafts) {
  QueueDraft draft = new_queue_draft(reader, map, key, name, "NAME_OVERRIDE", manager);
  QueueConfig& queue = draft.queue;
  read_server_fields(reader, map, key, draft);
  if (const Node* connections = map.find("CONNECTIONS")) {
    if (auto value = reader.integer(*connections, join_key(key, "CONNECTIONS"), 1, 1000)) {
      queue.connections = static_cast<int>(*value);
    }
  }
  if (const Node* client_class = map.find("CLASS")) {
    reader.warn(*client_class, join_key(key, "CLASS"), "ignored: a Python implementation detail");
  }
  const Node* handlers = map.find("HANDLERS");
  const std::string handlers_key = join_key(key, "HANDLERS");
  if (!handlers) {
    reader.error(map, handlers_key,
                 "missing: a list with one handler (e.g. ContainerGrader with KWARGS.grader_root)");
  } else if (reader.expect(*handlers, Node::Kind::List, handlers_key)) {
    if (handlers->items.empty()) {
      reader.error(*handlers, handlers_key, "empty: give one handler");
    } else if (handlers->items.size() > 1) {
      reader.error(*handlers, handlers_key,
                   "only one handler per queue is supported, got " + std::to_string(handlers->items.size()));
    } else {
      read_handler(reader, handlers->items[0], index_key(handlers_key, 0), manager, queue);
    }
  }
  drafts.push_back(std::move(draft));
}

}  // namespace

void read_manager_upstream(Reader& reader, const Node& root, ManagerConfig& manager) {
  if (!reader.expect(root, Node::Kind::Map, "")) return;
  reader.reject_unknown_keys(root, "", kManagerKeys);
  for (const auto& [name, value] : root.entries) {
    if (name == "POLL_INTERVAL") read_seconds(reader, value, name, manager.poll_interval);
    if (name == "LOGIN_POLL_INTERVAL") read_seconds(reader, value, name, manager.login_poll_interval);
    if (name == "REQUESTS_TIMEOUT") read_seconds(reader, value, name, manager.requests_timeout);
    if (name == "POLL_TIME") {
      std::chrono::milliseconds unused{};
      read_seconds(reader, value, name, unused);  // upstream's thread liveness check; nothing to do here
    }
    if (name == "FOLLOW_CLIENT_REDIRECTS") {
      if (const auto flag = reader.boolean(value, name)) manager.follow_client_redirects = *flag;
    }
    if (name == "HTTP_BASIC_AUTH" && value.kind != Node::Kind::Null) {
      if (auto pair = read_auth_pair(reader, value, name)) manager.http_basic_auth = *pair;
    }
  }
}

void read_servers_upstream(Reader& reader, const Node& root, ServerTable& servers) {
  if (!reader.expect(root, Node::Kind::Map, "")) return;
  for (const auto& [name, value] : root.entries) {
    ServerConfig& server = servers[name];
    server.name = name;
    if (!reader.expect(value, Node::Kind::Map, name)) continue;
    reader.reject_unknown_keys(value, name, kServerKeys);
    if (const Node* url = value.find("SERVER")) {
      if (auto text = read_url(reader, *url, join_key(name, "SERVER"))) server.url = *text;
    } else {
      reader.error(value, join_key(name, "SERVER"), "missing: the XQueue URL, e.g. http://xqueue:18040");
    }
    if (const Node* auth = value.find("AUTH")) {
      if (auto pair = read_auth_pair(reader, *auth, join_key(name, "AUTH"))) {
        server.username = pair->first;
        server.password = pair->second;
      }
    } else {
      reader.error(value, join_key(name, "AUTH"), "missing credentials: set AUTH [username, password]");
    }
  }
}

void read_queues_upstream(Reader& reader, const Node& root, const ManagerConfig& manager,
                          std::vector<QueueDraft>& drafts) {
  if (!reader.expect(root, Node::Kind::Map, "")) return;
  if (const Node* clients = root.find("CLIENTS")) {
    // Upstream's YAML form: CLIENTS (a list of queues with QUEUE_NAME), MANAGER, LOGGING.
    reader.reject_unknown_keys(root, "", {"CLIENTS", "MANAGER", "LOGGING"});
    if (const Node* ignored = root.find("MANAGER")) {
      reader.warn(*ignored, "MANAGER", "ignored in conf.d: manager settings belong in xqwatcher.yaml");
    }
    if (const Node* ignored = root.find("LOGGING")) {
      reader.warn(*ignored, "LOGGING", "ignored: Python logging settings do not apply to this watcher");
    }
    if (clients->kind == Node::Kind::Null) return reader.warn(*clients, "CLIENTS", "no queues listed");
    if (!reader.expect(*clients, Node::Kind::List, "CLIENTS")) return;
    for (std::size_t i = 0; i < clients->items.size(); ++i) {
      const Node& client = clients->items[i];
      const std::string key = index_key("CLIENTS", i);
      if (!reader.expect(client, Node::Kind::Map, key)) continue;
      reader.reject_unknown_keys(client, key, kClientKeys);
      const Node* queue_name = client.find("QUEUE_NAME");
      if (!queue_name) {
        reader.error(client, join_key(key, "QUEUE_NAME"), "missing: the queue's name");
        continue;
      }
      if (auto name = reader.text(*queue_name, join_key(key, "QUEUE_NAME"))) {
        read_upstream_queue(reader, *name, client, key, manager, drafts);
      }
    }
    return;
  }
  for (const auto& [name, value] : root.entries) {
    if (!reader.expect(value, Node::Kind::Map, name)) continue;
    reader.reject_unknown_keys(value, name, kQueueKeys);
    read_upstream_queue(reader, name, value, name, manager, drafts);
  }
}

}  // namespace xqw::config::detail
