// Registration only: each concern lives in its own file.
#include <napi.h>

namespace commitlog {
void InitMapping(Napi::Env env, Napi::Object exports);
void InitFile(Napi::Env env, Napi::Object exports);
void InitBatch(Napi::Env env, Napi::Object exports);
void InitSendfile(Napi::Env env, Napi::Object exports);
void InitResidency(Napi::Env env, Napi::Object exports);
}  // namespace commitlog

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  commitlog::InitMapping(env, exports);
  commitlog::InitFile(env, exports);
  commitlog::InitBatch(env, exports);
  commitlog::InitSendfile(env, exports);
  commitlog::InitResidency(env, exports);
  return exports;
}

NODE_API_MODULE(commitlog, Init)
