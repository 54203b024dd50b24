#pragma once
#include <napi.h>
#include <cstddef>

namespace commitlog {
// One mmapped region handed to JavaScript as an external ArrayBuffer.
// `inflight` counts thread-pool jobs (msync, populate) that touch it; munmap refuses
// with EBUSY while any run, so a JS bug can never make a worker touch unmapped memory.
struct Mapping {
  void* addr;
  size_t length;
  bool unmapped;
  int inflight;
};

// Returns the Mapping behind an ArrayBuffer made by mmap(), or nullptr (and throws).
Mapping* LookupMapping(Napi::Env env, Napi::Value value);

void InitMapping(Napi::Env env, Napi::Object exports);
}  // namespace commitlog
