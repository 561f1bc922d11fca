// config: asks the Docker engine which OCI runtimes it offers, for check-config's runtime check.
#include "config/config.hpp"
#include "docker/docker.hpp"

namespace xqw::config {

RuntimeLookup engine_runtime_lookup() {
  return [](const std::string& docker_socket) {
    EngineRuntimes runtimes;
    try {
      docker::Client engine(docker_socket);
      const auto info = engine.version();
      std::vector<std::string> names;
      for (const auto& [name, description] : info.runtimes) names.push_back(name);
      if (names.empty()) {
        runtimes.unavailable_reason = "its /info lists no runtimes";
        return runtimes;
      }
      runtimes.names = std::move(names);
    } catch (const docker::EngineError& error) {
      runtimes.unavailable_reason = error.what();
    }
    return runtimes;
  };
}

}  // namespace xqw::config
