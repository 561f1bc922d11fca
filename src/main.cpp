// main: the xqueue-watcher command line (run, check-config, grade).
#include <iostream>

int main() {
  std::cout << "xqueue-watcher " << XQW_VERSION << "\n";
  return 0;
}
