// mmap / munmap / msync / madvise / populate for file mappings.
// Contract: mmap returns an external ArrayBuffer over MAP_SHARED memory. munmap
// detaches the ArrayBuffer first (every JS view of it becomes zero-length, so no
// JS access can reach unmapped memory) and then unmaps. If JS drops the last
// reference without calling munmap, the finalizer unmaps (Java MappedByteBuffer's
// model). msync and populate run on libuv's thread pool and hold a reference to the
// ArrayBuffer for their whole run.
#include "mapping.h"

#include <v8.h>

#include <sys/mman.h>
#include <unistd.h>

#include <unordered_map>

#include "errors.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace commitlog {
namespace {

std::unordered_map<void*, Mapping*>& Registry() {
  static std::unordered_map<void*, Mapping*> registry;
  return registry;
}

// Runs when the ArrayBuffer is collected (a finalizer on the object: its backing store
// has the empty deleter, see Mmap).
void Finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  Mapping* m = static_cast<Mapping*>(data);
  if (!m->unmapped) munmap(m->addr, m->length);
  // After an explicit munmap the address may already belong to a newer mapping.
  auto it = Registry().find(m->addr);
  if (it != Registry().end() && it->second == m) Registry().erase(it);
  delete m;
}

size_t PageSize() {
  static size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t length = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  off_t offset = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  bool writable = info[3].As<Napi::Boolean>().Value();
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* addr = mmap(nullptr, length, prot, MAP_SHARED, fd, offset);
  if (addr == MAP_FAILED) {
    SyscallError(env, errno, "mmap").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Mapping* m = new Mapping{addr, length, false, 0};
  Registry()[addr] = m;
  // V8 counts the bytes of an ArrayBuffer's backing store as external memory, and each
  // buffer past its soft limit (64 MB over the low mark) starts a full GC: 1,000 mmaps
  // of 1 GiB ran ~480 mark-compacts, whose cost grows with the heap, so 10,000
  // partitions took minutes (subtracting the length with napi_adjust_external_memory,
  // before or after, does not help: the limit follows the low mark). A backing store
  // with the empty deleter is the embedder's memory and is not counted; the munmap is
  // then a finalizer on the ArrayBuffer object (napi_add_finalizer). napi_value is a
  // v8::Local's slot pointer, as in Node's own N-API implementation.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(addr, length, v8::BackingStore::EmptyDeleter, nullptr);
  v8::Local<v8::ArrayBuffer> local = v8::ArrayBuffer::New(isolate, std::move(store));
  napi_value value = reinterpret_cast<napi_value>(*local);
  if (napi_add_finalizer(env, value, m, Finalize, nullptr, nullptr) != napi_ok) {
    Registry().erase(addr);
    munmap(addr, length);
    delete m;
    SyscallError(env, ENOMEM, "mmap").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Value(env, value);
}

}  // namespace

Mapping* LookupMapping(Napi::Env env, Napi::Value value) {
  if (!value.IsArrayBuffer()) {
    Napi::TypeError::New(env, "expected a mapping ArrayBuffer").ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::ArrayBuffer ab = value.As<Napi::ArrayBuffer>();
  auto it = Registry().find(ab.Data());
  if (ab.ByteLength() == 0 || it == Registry().end() || it->second->unmapped) {
    SyscallError(env, EINVAL, "lookup mapping").ThrowAsJavaScriptException();
    return nullptr;
  }
  return it->second;
}

namespace {

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m = LookupMapping(env, info[0]);
  if (m == nullptr) return env.Undefined();
  if (m->inflight > 0) {
    SyscallError(env, EBUSY, "munmap").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* addr = m->addr;
  size_t length = m->length;
  m->unmapped = true;  // the finalizer (maybe run by Detach) must not unmap again
  Registry().erase(addr);
  info[0].As<Napi::ArrayBuffer>().Detach();
  if (munmap(addr, length) != 0) {
    SyscallError(env, errno, "munmap").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m = LookupMapping(env, info[0]);
  if (m == nullptr) return env.Undefined();
  size_t offset = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t length = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  int advice = info[3].As<Napi::Number>().Int32Value();
  size_t start = offset & ~(PageSize() - 1);
  if (madvise(static_cast<char*>(m->addr) + start, length + (offset - start), advice) != 0) {
    SyscallError(env, errno, "madvise").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// A thread-pool job over a range of one mapping, settled as a Promise.
class RangeWorker : public Napi::AsyncWorker {
 public:
  enum Kind { kMsync, kPopulate };
  RangeWorker(Napi::Env env, Napi::ArrayBuffer ab, Mapping* m, size_t offset, size_t length, Kind kind)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), mapping_(m), kind_(kind) {
    ref_ = Napi::Persistent(ab);
    size_t start = offset & ~(PageSize() - 1);
    addr_ = static_cast<char*>(m->addr) + start;
    length_ = length + (offset - start);
    m->inflight++;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (length_ == 0) return;
    if (kind_ == kMsync) {
      if (msync(addr_, length_, MS_SYNC) != 0) { err_ = errno; syscall_ = "msync"; }
      return;
    }
    if (madvise(addr_, length_, MADV_POPULATE_WRITE) == 0) return;
    // Only a kernel without MADV_POPULATE_WRITE (before 5.14: EINVAL) gets the fallback.
    // Any other failure (EFAULT past the end of a truncated file, ENOMEM, EIO) is
    // reported: touching those pages by hand would raise SIGBUS.
    if (errno != EINVAL) {
      err_ = errno;
      syscall_ = "madvise";
      return;
    }
    // Touch one byte per page (a read then the same value back) so the page is faulted
    // in writable here, not on the append path.
    volatile char* p = static_cast<volatile char*>(addr_);
    size_t ps = PageSize();
    for (size_t off = 0; off < length_; off += ps) p[off] = p[off];
  }
  void OnOK() override {
    mapping_->inflight--;
    if (err_ != 0) deferred_.Reject(SyscallError(Env(), err_, syscall_).Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override {
    mapping_->inflight--;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::ArrayBuffer> ref_;
  Mapping* mapping_;
  Kind kind_;
  char* addr_ = nullptr;
  size_t length_ = 0;
  int err_ = 0;
  const char* syscall_ = "";
};

Napi::Value QueueRange(const Napi::CallbackInfo& info, RangeWorker::Kind kind) {
  Napi::Env env = info.Env();
  Mapping* m = LookupMapping(env, info[0]);
  if (m == nullptr) return env.Undefined();
  size_t offset = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t length = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  auto* w = new RangeWorker(env, info[0].As<Napi::ArrayBuffer>(), m, offset, length, kind);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Msync(const Napi::CallbackInfo& info) { return QueueRange(info, RangeWorker::kMsync); }
Napi::Value Populate(const Napi::CallbackInfo& info) { return QueueRange(info, RangeWorker::kPopulate); }

Napi::Value MsyncSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m = LookupMapping(env, info[0]);
  if (m == nullptr) return env.Undefined();
  size_t offset = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t length = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  size_t start = offset & ~(PageSize() - 1);
  if (length > 0 && msync(static_cast<char*>(m->addr) + start, length + (offset - start), MS_SYNC) != 0) {
    SyscallError(env, errno, "msync").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("msync", Napi::Function::New(env, Msync, "msync"));
  exports.Set("msyncSync", Napi::Function::New(env, MsyncSync, "msyncSync"));
  exports.Set("madvise", Napi::Function::New(env, Madvise, "madvise"));
  exports.Set("populate", Napi::Function::New(env, Populate, "populate"));
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(PageSize())));
  Napi::Object adv = Napi::Object::New(env);
  adv.Set("NORMAL", MADV_NORMAL);
  adv.Set("RANDOM", MADV_RANDOM);
  adv.Set("SEQUENTIAL", MADV_SEQUENTIAL);
  adv.Set("WILLNEED", MADV_WILLNEED);
  adv.Set("DONTNEED", MADV_DONTNEED);
  exports.Set("madviseFlags", adv);
}

}  // namespace commitlog
