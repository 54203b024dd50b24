// Page-cache residency of file ranges, so the broker can keep disk reads off the
// event loop (issue 9: a sendfile of cold pages reads the disk on the loop thread).
//
// residentPages(mapping, offset, length) -> pages of mapping[offset, offset+length)
//   that are in the page cache and up to date, by mincore(2) on the file's mapping.
// firstNonResident(mapping, offset, length) -> the first byte (>= offset) of the first
//   page that is not resident, or offset + length when every page is.
//   Why mincore and not preadv2(RWF_NOWAIT): one system call answers for every page,
//   copies nothing and has no side effect (no readahead, no page-table entries);
//   RWF_NOWAIT would copy the bytes it probes (or take a call per page) and only says
//   where the first miss is. Measured here: ~1.3 us per MiB of mapped pages, ~20-40 us
//   per MiB of pages that are cached but not mapped into this process. Since Linux 5.0
//   mincore reports the page cache only for files the caller owns or may write (else
//   only pages mapped in the caller); a false "not resident" costs one needless
//   prefetch of cached pages, never a wrong answer the other way.
//   Synchronous: mincore never waits for I/O.
// prefetch(fd, position, length, exact) -> Promise<bytes>: reads the range into the page cache
//   on libuv's thread pool with pread into a per-thread 256 KiB scratch buffer, and
//   resolves once every page has been read (bytes < length only when the file ends
//   first). Why pread: readahead(2), posix_fadvise(WILLNEED) and MADV_WILLNEED return
//   before the I/O completes and are capped at the device's readahead size (measured:
//   each returned in ~2 ms with 0 of 64 MiB resident, and 8 MiB of it ever arrived), so
//   the sendfile after them would still wait for the disk on the loop.
//   MADV_POPULATE_READ completes too and copies nothing, but maps every page into the
//   broker's page tables (RSS, and mapped pages are neither dropped by fadvise nor
//   reclaimed as easily); pread leaves the page cache exactly as sendfile reads it, and
//   the copy into scratch costs ~0.1 ms of a pool thread per MiB.
//   The caller keeps fd open until the promise settles.
// dropPageCache(fd, position, length): fdatasync, then posix_fadvise(DONTNEED) of the
//   range: clean pages not mapped by any process leave the page cache. For tests and
//   benchmarks; synchronous (fdatasync on the calling thread).
// Errors carry errno, code and syscall (errors.h); src/native.ts validates arguments.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "errors.h"
#include "mapping.h"

namespace commitlog {
namespace {

// One mincore call covers at most this many pages (64 MiB of 4 KiB pages).
constexpr size_t kWindowPages = 16384;
constexpr size_t kScratchBytes = 256 * 1024;

size_t PageSize() {
  static size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

// Walks the pages of mapping[offset, offset+length). Returns -errno on failure, else the
// resident page count (countAll) or the index of the first missing page (pages when none).
int64_t Walk(Mapping* m, size_t offset, size_t length, bool countAll) {
  if (length == 0) return 0;
  size_t ps = PageSize();
  size_t first = offset / ps;
  size_t last = (offset + length - 1) / ps;
  size_t pages = last - first + 1;
  static thread_local std::vector<unsigned char> vec;
  int64_t resident = 0;
  for (size_t done = 0; done < pages;) {
    size_t n = std::min(kWindowPages, pages - done);
    if (vec.size() < n) vec.resize(n);
    char* addr = static_cast<char*>(m->addr) + (first + done) * ps;
    while (mincore(addr, n * ps, vec.data()) != 0) {
      if (errno != EAGAIN) return -static_cast<int64_t>(errno);
    }
    for (size_t i = 0; i < n; i++) {
      if ((vec[i] & 1) != 0) {
        resident++;
      } else if (!countAll) {
        return static_cast<int64_t>(done + i);
      }
    }
    done += n;
  }
  return countAll ? resident : static_cast<int64_t>(pages);
}

bool RangeArgs(const Napi::CallbackInfo& info, Mapping** m, size_t* offset, size_t* length) {
  Napi::Env env = info.Env();
  *m = LookupMapping(env, info[0]);
  if (*m == nullptr) return false;
  *offset = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  *length = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  if (*offset + *length > (*m)->length) {
    SyscallError(env, EINVAL, "mincore").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value ResidentPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m;
  size_t offset, length;
  if (!RangeArgs(info, &m, &offset, &length)) return env.Undefined();
  int64_t r = Walk(m, offset, length, true);
  if (r < 0) {
    SyscallError(env, static_cast<int>(-r), "mincore").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Value FirstNonResident(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m;
  size_t offset, length;
  if (!RangeArgs(info, &m, &offset, &length)) return env.Undefined();
  int64_t r = Walk(m, offset, length, false);
  if (r < 0) {
    SyscallError(env, static_cast<int>(-r), "mincore").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t ps = PageSize();
  size_t at = (offset / ps + static_cast<size_t>(r)) * ps;
  return Napi::Number::New(env, static_cast<double>(std::min(std::max(at, offset), offset + length)));
}

class PrefetchWorker : public Napi::AsyncWorker {
 public:
  PrefetchWorker(Napi::Env env, int fd, off_t position, size_t length, bool exact)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), position_(position), length_(length), exact_(exact) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // Pool threads live as long as the process: one scratch buffer each, never freed.
    static thread_local std::unique_ptr<char[]> scratch;
    if (!scratch) scratch.reset(new char[kScratchBytes]);
    // exact: no readahead past the range (POSIX_FADV_RANDOM applies to the whole open
    // file description, so callers pass a descriptor of their own).
    if (exact_) posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM);
    while (done_ < length_) {
      size_t want = std::min(kScratchBytes, length_ - done_);
      ssize_t n = pread(fd_, scratch.get(), want, position_ + static_cast<off_t>(done_));
      if (n < 0) {
        if (errno == EINTR) continue;
        err_ = errno;
        return;
      }
      if (n == 0) return;  // the file ends here
      done_ += static_cast<size_t>(n);
    }
  }
  void OnOK() override {
    if (err_ != 0) {
      Napi::Error e = SyscallError(Env(), err_, "pread");
      e.Set("bytesRead", Napi::Number::New(Env(), static_cast<double>(done_)));
      deferred_.Reject(e.Value());
    } else {
      deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(done_)));
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  off_t position_;
  size_t length_;
  bool exact_;
  size_t done_ = 0;
  int err_ = 0;
};

Napi::Value Prefetch(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t position = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  size_t length = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  bool exact = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  auto* w = new PrefetchWorker(info.Env(), fd, position, length, exact);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value DropPageCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t position = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  off_t length = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  // Dirty pages are not dropped: write them back first.
  while (fdatasync(fd) != 0) {
    if (errno == EINTR) continue;
    SyscallError(env, errno, "fdatasync").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int err = posix_fadvise(fd, position, length, POSIX_FADV_DONTNEED);
  if (err != 0) SyscallError(env, err, "posix_fadvise").ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

void InitResidency(Napi::Env env, Napi::Object exports) {
  exports.Set("residentPages", Napi::Function::New(env, ResidentPages, "residentPages"));
  exports.Set("firstNonResident", Napi::Function::New(env, FirstNonResident, "firstNonResident"));
  exports.Set("prefetch", Napi::Function::New(env, Prefetch, "prefetch"));
  exports.Set("dropPageCache", Napi::Function::New(env, DropPageCache, "dropPageCache"));
}

}  // namespace commitlog
