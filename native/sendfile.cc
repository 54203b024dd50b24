// Zero-copy transfer of a file range to a socket: sendfile(2) driven by the event
// loop, so bytes go page cache -> socket inside the kernel without blocking the loop
// and without holding a libuv thread-pool thread while a slow peer drains.
//
// sendfile(socketFd, fileFd, position, length, callback) -> transfer id
//   dup()s the socket and calls sendfile until `length` bytes are sent or the socket
//   buffer is full (EAGAIN); then waits on a uv_poll_t (UV_WRITABLE) on the dup and
//   resumes when writable. One loop turn moves at most kTurnBudgetBytes, so a fast
//   peer cannot monopolise the loop either. When done, failed or cancelled it stops
//   and closes the poll handle, then close()s the dup, then calls
//   callback(err | null, bytesSent) - always asynchronously, from the loop.
//   Errors carry errno (positive), code and syscall like errors.h; EPIPE and
//   ECONNRESET (peer gone) are errors, EINTR is retried, and a file that ends before
//   `length` (sendfile returns 0) is code "EOF" (errno UV_EOF), never a spin.
// sendfileCancel(id) -> bool: ends a transfer still running with ECANCELED.
// sendfileStats() -> { bytes, calls }: process-wide bytes moved by sendfile(2) and
//   sendfile(2) system calls made (including ones that hit EAGAIN).
//
// Caller contract (src/net/zero-copy.ts keeps it):
// - the socket is non-blocking (libuv's TCP handles are; checked here), and nothing
//   else writes to it until the callback runs, or the bytes interleave;
// - fileFd stays open until the callback runs (we do not dup it);
// - the dup keeps the connection open even after the owner closes its fd, so an
//   owner that closes the socket mid-transfer must call sendfileCancel.
// Why dup: libuv allows one poll watcher per fd per loop, and Node's TCP handle
// already watches the original. SIGPIPE is ignored by Node, so a closed peer is EPIPE.
// Threads: everything runs on the calling env's loop thread; the id table is per
// thread (one per worker), the counters are atomic.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "errors.h"

namespace commitlog {
namespace {

// Linux moves at most 0x7ffff000 bytes per sendfile call.
constexpr uint64_t kMaxChunkBytes = 0x7ffff000;
// Per loop turn; a few milliseconds of kernel copying at most.
constexpr uint64_t kTurnBudgetBytes = 4u << 20;
// Our marker for "the file ended early"; reported as code EOF, errno UV_EOF.
constexpr int kEof = -1;

std::atomic<uint64_t> g_bytes{0};
std::atomic<uint64_t> g_calls{0};

struct Transfer {
  uv_poll_t poll;
  napi_env env = nullptr;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
  uint64_t id = 0;
  int sockFd = -1;  // our dup, closed after the poll handle
  int fileFd = -1;
  off_t position = 0;
  uint64_t requested = 0;
  uint64_t remaining = 0;
  uint64_t sent = 0;
  int err = 0;  // positive errno, kEof, or 0
  const char* syscall = "sendfile";
  int pollError = 0;  // last negative status from the poll callback
  bool polling = false;
  bool finishing = false;
  bool envGone = false;
};

thread_local std::unordered_map<uint64_t, Transfer*> t_transfers;
thread_local uint64_t t_nextId = 1;

void Pump(Transfer* t);
void EnvCleanup(void* arg);

Napi::Error TransferError(Napi::Env env, const Transfer& t) {
  std::string code;
  std::string detail;
  int errnoValue;
  if (t.err == kEof) {
    code = "EOF";
    errnoValue = UV_EOF;
    detail = "file ended at position " + std::to_string(static_cast<long long>(t.position));
  } else {
    char name[64];
    uv_err_name_r(-t.err, name, sizeof name);
    code = name;
    errnoValue = t.err;
    detail = strerror(t.err);
  }
  std::string msg = std::string(t.syscall) + " failed: " + code + " (" + detail + ") after " + std::to_string(t.sent) +
                    " of " + std::to_string(t.requested) + " bytes";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, errnoValue));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, t.syscall));
  e.Set("bytesSent", Napi::Number::New(env, static_cast<double>(t.sent)));
  return e;
}

void CallBack(Transfer* t) {
  Napi::Env env(t->env);
  Napi::HandleScope scope(env);
  napi_value err = t->err == 0 ? env.Null() : TransferError(env, *t).Value();
  napi_value sent = Napi::Number::New(env, static_cast<double>(t->sent));
  // MakeCallback opens a callback scope: async hooks see the right context and
  // promise reactions queued by the callback run before we return to the loop.
  t->callback.MakeCallback(env.Global(), {err, sent}, *t->context);
  if (env.IsExceptionPending()) {
    // No JavaScript frame is below us to catch it: report it as uncaught.
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(t->env, e.Value());
  }
}

void OnClosed(uv_handle_t* handle) {
  Transfer* t = static_cast<Transfer*>(handle->data);
  // Linux releases the fd even when close fails with EINTR; never retry.
  close(t->sockFd);
  if (!t->envGone) {
    napi_remove_env_cleanup_hook(t->env, EnvCleanup, t);
    CallBack(t);
  }
  delete t;
}

// Stops the transfer; the callback runs from the poll handle's close callback.
void Finish(Transfer* t) {
  t->finishing = true;
  t_transfers.erase(t->id);
  if (t->polling) uv_poll_stop(&t->poll);
  t->polling = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&t->poll), OnClosed);
}

void Fail(Transfer* t, int err, const char* syscall) {
  t->err = err;
  t->syscall = syscall;
  Finish(t);
}

void OnWritable(uv_poll_t* handle, int status, int events) {
  Transfer* t = static_cast<Transfer*>(handle->data);
  if (t->finishing) return;
  if (status < 0) {
    // libuv reports POLLERR as UV_EBADF and stops the watcher; one more sendfile
    // returns the socket's real error (EPIPE, ECONNRESET).
    t->polling = false;
    t->pollError = status;
  }
  Pump(t);
}

void WaitWritable(Transfer* t) {
  if (t->pollError != 0) {
    // The socket reported an error yet sendfile would block: give up rather than
    // poll a broken socket forever.
    Fail(t, -t->pollError, "uv_poll");
    return;
  }
  if (t->polling) return;
  int r = uv_poll_start(&t->poll, UV_WRITABLE, OnWritable);
  if (r < 0) {
    Fail(t, -r, "uv_poll_start");
    return;
  }
  t->polling = true;
}

void Pump(Transfer* t) {
  uint64_t turn = 0;
  while (t->remaining > 0) {
    if (turn >= kTurnBudgetBytes) {
      // Level-triggered: a still-writable socket wakes us on the next loop turn.
      WaitWritable(t);
      return;
    }
    size_t chunk = static_cast<size_t>(t->remaining < kMaxChunkBytes ? t->remaining : kMaxChunkBytes);
    off_t pos = t->position;
    ssize_t n = sendfile(t->sockFd, t->fileFd, &pos, chunk);
    g_calls.fetch_add(1, std::memory_order_relaxed);
    if (n > 0) {
      uint64_t moved = static_cast<uint64_t>(n);
      g_bytes.fetch_add(moved, std::memory_order_relaxed);
      t->position += n;
      t->remaining -= moved;
      t->sent += moved;
      turn += moved;
      t->pollError = 0;
      continue;
    }
    if (n == 0) {
      Fail(t, kEof, "sendfile");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      WaitWritable(t);
      return;
    }
    Fail(t, errno, "sendfile");
    return;
  }
  Finish(t);
}

// The env is going away (worker exit, process teardown): stop without calling back.
void EnvCleanup(void* arg) {
  Transfer* t = static_cast<Transfer*>(arg);
  t->envGone = true;
  t->callback.Reset();
  t->context.reset();
  if (!t->finishing) Finish(t);
}

Napi::Value Sendfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int socketFd = info[0].As<Napi::Number>().Int32Value();
  int fileFd = info[1].As<Napi::Number>().Int32Value();
  int64_t position = info[2].As<Napi::Number>().Int64Value();
  int64_t length = info[3].As<Napi::Number>().Int64Value();
  Napi::Function callback = info[4].As<Napi::Function>();

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    SyscallError(env, EINVAL, "napi_get_uv_event_loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int dupFd = fcntl(socketFd, F_DUPFD_CLOEXEC, 0);
  if (dupFd < 0) {
    SyscallError(env, errno, "dup").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int flags = fcntl(dupFd, F_GETFL);
  if (flags < 0 || (flags & O_NONBLOCK) == 0) {
    // A blocking socket would stall the event loop inside sendfile.
    int err = errno;
    close(dupFd);
    if (flags < 0) {
      SyscallError(env, err, "fcntl").ThrowAsJavaScriptException();
    } else {
      Napi::Error e = SyscallError(env, EINVAL, "sendfile");
      e.Set("message", Napi::String::New(env, "sendfile failed: EINVAL (the socket is not in non-blocking mode)"));
      e.ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  auto* t = new Transfer();
  int r = uv_poll_init(loop, &t->poll, dupFd);
  if (r < 0) {
    // Not pollable (a regular file, say): not a socket we can wait on.
    close(dupFd);
    delete t;
    SyscallError(env, -r, "uv_poll_init").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  t->poll.data = t;
  t->env = env;
  t->callback = Napi::Persistent(callback);
  t->context = std::make_unique<Napi::AsyncContext>(env, "commitlog.sendfile");
  t->id = t_nextId++;
  t->sockFd = dupFd;
  t->fileFd = fileFd;
  t->position = static_cast<off_t>(position);
  t->requested = static_cast<uint64_t>(length);
  t->remaining = t->requested;
  t_transfers[t->id] = t;
  napi_add_env_cleanup_hook(env, EnvCleanup, t);
  Pump(t);
  return Napi::Number::New(env, static_cast<double>(t->id));
}

Napi::Value SendfileCancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  auto it = t_transfers.find(id);
  if (it == t_transfers.end() || it->second->finishing) return Napi::Boolean::New(env, false);
  Fail(it->second, ECANCELED, "sendfile");
  return Napi::Boolean::New(env, true);
}

Napi::Value SendfileStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("bytes", Napi::Number::New(env, static_cast<double>(g_bytes.load(std::memory_order_relaxed))));
  stats.Set("calls", Napi::Number::New(env, static_cast<double>(g_calls.load(std::memory_order_relaxed))));
  return stats;
}

}  // namespace

void InitSendfile(Napi::Env env, Napi::Object exports) {
  exports.Set("sendfile", Napi::Function::New(env, Sendfile, "sendfile"));
  exports.Set("sendfileCancel", Napi::Function::New(env, SendfileCancel, "sendfileCancel"));
  exports.Set("sendfileStats", Napi::Function::New(env, SendfileStats, "sendfileStats"));
}

}  // namespace commitlog
