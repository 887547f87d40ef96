// mock_chat_server: the real web chat server (nanochat/serve/chat_server.h) in front of MockChatModel, so the HTTP and
// browser tests can drive it over 127.0.0.1 without a trained model. A test program only: it is not part of the
// nanochat program and says so when it starts.
//   build/tests/mock_chat_server --port 0 --num-gpus 2 --mock-delay-ms 5
// Takes every chat_web flag, plus --mock-delay-ms (per token), --mock-fail-on N,M (those generations throw),
// --mock-sequence-len, --mock-load-ms (time to "load" each replica, to test 503 while loading). --max-batch goes to
// the mocks as chat_web gives it to its models: each replica then serves that many requests at once.
#include <chrono>
#include <cstdio>
#include <thread>

#include "nanochat/serve/chat_server.h"
#include "nanochat/common.h"
#include "tests/http/mock_chat_model.h"

int main(int argc, char** argv) {
  using namespace nanochat;
  Flags app{"Web chat server with a MOCK model (tests only)", "mock_chat_server"};
  ChatServerOptions opt;
  add_chat_web_flags(app, opt);
  MockOptions mock;
  int load_ms = 0;
  app.add_option("--mock-delay-ms", mock.delay_ms, "sleep per generated token");
  app.add_option("--mock-fail-on", mock.fail_on, "generations (1-based, over all workers) that throw, e.g. 3,5")
      ->delimiter(',');
  app.add_option("--mock-sequence-len", mock.sequence_len, "the mock model's context length");
  app.add_option("--mock-load-ms", load_ms, "time each replica takes to load");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  opt.model_name = "nanochat-mock";
  std::printf("MOCK MODEL: this server answers with a scripted byte-level mock, for tests only\n");
  try {
    return run_chat_server(opt, [&](int i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(load_ms));
      MockOptions m = mock;
      m.device = "mock:" + std::to_string(i);
      m.max_batch = opt.max_batch;
      return std::make_unique<MockChatModel>(m);
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
