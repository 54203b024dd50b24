// CRC32C for JavaScript and the recovery scanner: walks Kafka RecordBatch v2 headers
// from a position, verifying length, magic, record count, offset continuity and the
// CRC of each batch, and stops at the first that fails. One call covers a whole
// segment tail, so recovery runs at memory speed rather than batch-by-batch in JS.
#include <cstdint>
#include <cstring>

#include "crc32c.h"
#include "errors.h"

namespace commitlog {
namespace {

// Header layout (big-endian), see docs/format.md.
constexpr size_t kLengthOffset = 8;
constexpr size_t kEpochOffset = 12;
constexpr size_t kMagicOffset = 16;
constexpr size_t kCrcOffset = 17;
constexpr size_t kAttributesOffset = 21;
constexpr size_t kLastOffsetDeltaOffset = 23;
constexpr size_t kRecordCountOffset = 57;
constexpr size_t kHeaderBytes = 61;
constexpr size_t kLogOverhead = 12;  // baseOffset + batchLength

enum Status { kEnd = 0, kBadLength = 1, kBadMagic = 2, kBadCrc = 3, kBadOffset = 4, kTruncated = 5, kBadCount = 6, kBadEpoch = 7 };

uint32_t U32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
int64_t I64(const uint8_t* p) { return static_cast<int64_t>((uint64_t(U32(p)) << 32) | U32(p + 4)); }

bool ViewOf(const Napi::Value& v, const uint8_t** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array u8 = v.As<Napi::Uint8Array>();
  *data = u8.Data();
  *len = u8.ByteLength();
  return true;
}

Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data;
  size_t len;
  if (!ViewOf(info[0], &data, &len)) {
    Napi::TypeError::New(env, "crc32c: expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t start = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t end = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  return Napi::Number::New(env, Crc32c(0, data + start, end - start));
}

Napi::Value ScanBatches(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data;
  size_t len;
  if (!ViewOf(info[0], &data, &len)) {
    Napi::TypeError::New(env, "scanBatches: expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t pos = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t end = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  int64_t expected = info[3].As<Napi::Number>().Int64Value();  // < 0: accept the first batch's offset
  size_t maxBatches = static_cast<size_t>(info[4].As<Napi::Number>().Int64Value());
  // The log stamps its recovery epoch into each batch's partition leader epoch (outside
  // the CRC): epochs never decrease along a log, so a batch left over from an earlier
  // life of the file cannot pass after a newer one. Negative epochs (unstamped) are not
  // compared; a starting epoch below -1 turns the check off.
  int64_t epoch = info[5].As<Napi::Number>().Int64Value();
  const bool checkEpochs = epoch >= -1;
  if (end > len) end = len;
  Status status = kEnd;
  size_t count = 0;
  int64_t records = 0;
  while (count < maxBatches) {
    if (pos + kLogOverhead > end) break;
    const uint8_t* b = data + pos;
    uint32_t batchLength = U32(b + kLengthOffset);
    if (batchLength == 0) break;  // unwritten space reads as zeros: end of data
    if (batchLength < kHeaderBytes - kLogOverhead || batchLength > 0x7fffffffu) { status = kBadLength; break; }
    if (pos + kLogOverhead + batchLength > end) { status = kTruncated; break; }
    if (b[kMagicOffset] != 2) { status = kBadMagic; break; }
    uint32_t stored = U32(b + kCrcOffset);
    uint32_t actual = Crc32c(0, b + kAttributesOffset, kLogOverhead + batchLength - kAttributesOffset);
    if (stored != actual) { status = kBadCrc; break; }
    int32_t lastDelta = static_cast<int32_t>(U32(b + kLastOffsetDeltaOffset));
    int32_t recordCount = static_cast<int32_t>(U32(b + kRecordCountOffset));
    if (recordCount < 1 || lastDelta != recordCount - 1) { status = kBadCount; break; }
    int64_t base = I64(b);
    if (expected >= 0 && base != expected) { status = kBadOffset; break; }
    int32_t batchEpoch = static_cast<int32_t>(U32(b + kEpochOffset));
    if (checkEpochs && batchEpoch >= 0) {
      if (batchEpoch < epoch) { status = kBadEpoch; break; }
      epoch = batchEpoch;
    }
    expected = base + lastDelta + 1;
    records += recordCount;
    pos += kLogOverhead + batchLength;
    count++;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("position", Napi::Number::New(env, static_cast<double>(pos)));
  out.Set("batches", Napi::Number::New(env, static_cast<double>(count)));
  out.Set("records", Napi::Number::New(env, static_cast<double>(records)));
  out.Set("nextOffset", Napi::Number::New(env, static_cast<double>(expected)));
  out.Set("status", Napi::Number::New(env, status));
  out.Set("epoch", Napi::Number::New(env, static_cast<double>(epoch)));
  return out;
}

// Counts the whole, CRC-valid batches in data[start, end), resynchronising after
// anything else: the bytes between two batches that are not all zeros count as one
// run, and the search for the next batch header goes on byte by byte. Recovery uses it to
// report what a dropped tail held, including batches behind a hole of zeros.
Napi::Value CountBatches(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data;
  size_t len;
  if (!ViewOf(info[0], &data, &len)) {
    Napi::TypeError::New(env, "countBatches: expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t pos = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t end = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  if (end > len) end = len;
  double batches = 0;
  double runs = 0;
  bool inRun = false;
  while (pos < end) {
    const uint8_t* b = data + pos;
    if (pos + kHeaderBytes <= end && b[kMagicOffset] == 2) {
      uint32_t batchLength = U32(b + kLengthOffset);
      if (batchLength >= kHeaderBytes - kLogOverhead && batchLength <= 0x7fffffffu && pos + kLogOverhead + batchLength <= end &&
          U32(b + kCrcOffset) == Crc32c(0, b + kAttributesOffset, kLogOverhead + batchLength - kAttributesOffset)) {
        batches++;
        inRun = false;
        pos += kLogOverhead + batchLength;
        continue;
      }
    }
    // No skipping ahead over zeros: a batch starts with its base offset, whose high
    // bytes are zeros, so every position is a candidate (one compare for most).
    if (*b != 0 && !inRun) {
      runs++;
      inRun = true;
    }
    pos++;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("batches", Napi::Number::New(env, batches));
  out.Set("runs", Napi::Number::New(env, runs));
  return out;
}

}  // namespace

void InitBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c"));
  exports.Set("countBatches", Napi::Function::New(env, CountBatches, "countBatches"));
  exports.Set("scanBatches", Napi::Function::New(env, ScanBatches, "scanBatches"));
  exports.Set("crc32cHardware", Napi::Boolean::New(env, Crc32cHardware()));
}

}  // namespace commitlog
