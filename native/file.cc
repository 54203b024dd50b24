// File-level syscalls Node's fs lacks: posix_fallocate (sync and on the thread pool),
// zeroing a range while keeping its blocks allocated, and flock for the data
// directory's lock file.
#include <algorithm>
#include <cstdint>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <vector>

#include "errors.h"

namespace commitlog {
namespace {

int DoFallocate(int fd, off_t offset, off_t length) {
  // posix_fallocate returns the error instead of setting errno.
  return posix_fallocate(fd, offset, length);
}

Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t offset = info[1].As<Napi::Number>().Int64Value();
  off_t length = info[2].As<Napi::Number>().Int64Value();
  int err = DoFallocate(fd, offset, length);
  if (err != 0) SyscallError(env, err, "posix_fallocate").ThrowAsJavaScriptException();
  return env.Undefined();
}

class FallocateWorker : public Napi::AsyncWorker {
 public:
  FallocateWorker(Napi::Env env, int fd, off_t offset, off_t length)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), offset_(offset), length_(length) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { err_ = DoFallocate(fd_, offset_, length_); }
  void OnOK() override {
    if (err_ != 0) deferred_.Reject(SyscallError(Env(), err_, "posix_fallocate").Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  off_t offset_;
  off_t length_;
  int err_ = 0;
};

Napi::Value FallocateAsync(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t offset = info[1].As<Napi::Number>().Int64Value();
  off_t length = info[2].As<Napi::Number>().Int64Value();
  auto* w = new FallocateWorker(info.Env(), fd, offset, length);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Makes [offset, offset+length) read as zeros and stay allocated: FALLOC_FL_ZERO_RANGE
// where the filesystem has it, plain zero writes otherwise. Used by recovery to wipe a
// torn tail so no stale bytes past the new end can ever parse as a batch.
Napi::Value ZeroRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t offset = info[1].As<Napi::Number>().Int64Value();
  off_t length = info[2].As<Napi::Number>().Int64Value();
  if (length <= 0) return env.Undefined();
#ifdef FALLOC_FL_ZERO_RANGE
  if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length) == 0) return env.Undefined();
  if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS) {
    SyscallError(env, errno, "fallocate").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#endif
  std::vector<char> zeros(1 << 20, 0);
  while (length > 0) {
    size_t n = length < static_cast<off_t>(zeros.size()) ? static_cast<size_t>(length) : zeros.size();
    ssize_t w = pwrite(fd, zeros.data(), n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      SyscallError(env, errno, "pwrite").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    offset += w;
    length -= w;
  }
  return env.Undefined();
}

// Position just past the last non-zero byte of the file in [from, to) (`from` when
// there is none). Holes and unwritten extents are skipped with SEEK_DATA/SEEK_HOLE
// (ext4 and xfs report unwritten extents without dirty pages as holes), the rest is
// read with pread, so sizing what lies past a torn tail costs what is really there,
// not the preallocated size. Recovery uses it to report truthfully what it drops.
Napi::Value LastDataByte(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t from = info[1].As<Napi::Number>().Int64Value();
  off_t to = info[2].As<Napi::Number>().Int64Value();
  off_t last = from;
  std::vector<uint8_t> buf(1 << 20);
  off_t pos = from;
  while (pos < to) {
    off_t dataStart = lseek(fd, pos, SEEK_DATA);
    if (dataStart < 0) {
      if (errno == ENXIO) break;  // no data past pos
      if (errno != EINVAL && errno != EOPNOTSUPP) {
        SyscallError(env, errno, "lseek").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      dataStart = pos;  // no SEEK_DATA here: read everything
    }
    if (dataStart >= to) break;
    off_t dataEnd = lseek(fd, dataStart, SEEK_HOLE);
    if (dataEnd < 0 || dataEnd > to) dataEnd = to;
    for (off_t at = dataStart; at < dataEnd;) {
      size_t want = static_cast<size_t>(std::min<off_t>(dataEnd - at, static_cast<off_t>(buf.size())));
      ssize_t n = pread(fd, buf.data(), want, at);
      if (n < 0) {
        if (errno == EINTR) continue;
        SyscallError(env, errno, "pread").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      if (n == 0) {
        dataEnd = at;  // the file ends here
        break;
      }
      for (ssize_t i = n; i > 0; i--) {
        if (buf[i - 1] != 0) {
          last = at + i;
          break;
        }
      }
      at += n;
    }
    if (dataEnd <= dataStart) break;
    pos = dataEnd;
  }
  return Napi::Number::New(env, static_cast<double>(last));
}

// flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it.
Napi::Value TryLock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    SyscallError(env, errno, "flock").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitFile(Napi::Env env, Napi::Object exports) {
  exports.Set("fallocate", Napi::Function::New(env, Fallocate, "fallocate"));
  exports.Set("fallocateAsync", Napi::Function::New(env, FallocateAsync, "fallocateAsync"));
  exports.Set("zeroRange", Napi::Function::New(env, ZeroRange, "zeroRange"));
  exports.Set("tryLock", Napi::Function::New(env, TryLock, "tryLock"));
  exports.Set("lastDataByte", Napi::Function::New(env, LastDataByte, "lastDataByte"));
}

}  // namespace commitlog
