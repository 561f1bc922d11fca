// config: asks the Docker engine which OCI runtimes it offers, for check-config's runtime check.
#include "config/config.hpp"
#include "docker/docker.hpp"

namespace xqw::config {

RuntimeLookup engine_runtime_lookup() {
  return [](const std::string& docker_socket) -> EngineRuntimes {
    try {
      docker::Client engine(docker_socket);
      const auto info = engine.version();
      std::vector<std::string> names;
      for (const auto& [name, description] : info.runtimes) names.push_back(name);
      if (names.empty()) return std::unexpected(RuntimesUnknown{"its /info lists no runtimes"});
      return names;
    } catch (const docker::EngineError& error) {
      return std::unexpected(RuntimesUnknown{error.what()});
    }
  };
}

}  // namespace xqw::config
