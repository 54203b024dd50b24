// CRC32C: hardware (x86-64 SSE4.2 crc32 instruction) with a slicing-by-8 software
// fallback. No JS types here.
//
// The crc32 instruction has a latency of three cycles and a throughput of one, so one
// dependent chain uses a third of it. Buffers of at least one block (3 lanes of
// kLaneBytes) are cut into blocks; each block's three lanes are summed by three
// independent chains in one loop, then joined: the CRC register is linear, so
//   update(c, A || B) = shift(update(c, A), |B|) ^ update(0, B)
// where shift(x, n) is x advanced over n zero bytes, a fixed linear map of x for the
// fixed lane length, applied with four 256-entry tables built at load time.
#include "crc32c.h"

#include <cstring>
#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace commitlog {
namespace {

uint32_t table[8][256];

void InitTable() {
  const uint32_t poly = 0x82F63B78u;  // reflected Castagnoli polynomial
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = table[0][i];
    for (int t = 1; t < 8; t++) {
      c = table[0][c & 0xff] ^ (c >> 8);
      table[t][i] = c;
    }
  }
}

uint32_t Software(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);  // little-endian host assumed (x86-64, arm64)
    v ^= crc;
    crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
          table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^
          table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
constexpr size_t kLaneBytes = 4096;  // a multiple of 8
constexpr size_t kBlockBytes = 3 * kLaneBytes;

// shiftTable[k][b]: the register b << (8 * k) advanced over kLaneBytes zero bytes.
uint32_t shiftTable[4][256];

uint32_t ShiftLane(uint32_t x) {
  return shiftTable[0][x & 0xff] ^ shiftTable[1][(x >> 8) & 0xff] ^ shiftTable[2][(x >> 16) & 0xff] ^
         shiftTable[3][x >> 24];
}

// One chain over n bytes (no inversion: the raw register update).
__attribute__((target("sse4.2"))) uint32_t Chain(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

// The shift map is linear: its value on each of the 32 unit registers (each advanced
// over kLaneBytes zeros by the instruction itself) gives every table entry by XOR.
__attribute__((target("sse4.2"))) void InitShiftTable() {
  static const uint8_t zeros[kLaneBytes] = {};
  uint32_t unit[32];
  for (int i = 0; i < 32; i++) unit[i] = Chain(1u << i, zeros, kLaneBytes);
  for (int k = 0; k < 4; k++) {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t x = b << (8 * k), r = 0;
      for (int i = 0; i < 32; i++) {
        if (x & (1u << i)) r ^= unit[i];
      }
      shiftTable[k][b] = r;
    }
  }
}

__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t c = ~crc;
  while (n >= kBlockBytes) {
    uint64_t a = c, b = 0, d = 0;
    const uint8_t* p1 = p + kLaneBytes;
    const uint8_t* p2 = p + 2 * kLaneBytes;
    for (size_t i = 0; i < kLaneBytes; i += 8) {
      uint64_t va, vb, vd;
      memcpy(&va, p + i, 8);
      memcpy(&vb, p1 + i, 8);
      memcpy(&vd, p2 + i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vd);
    }
    c = ShiftLane(ShiftLane(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^ static_cast<uint32_t>(d);
    p += kBlockBytes;
    n -= kBlockBytes;
  }
  return ~Chain(c, p, n);
}

bool DetectHardware() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
}
#else
bool DetectHardware() { return false; }
uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) { return Software(crc, p, n); }
#endif

struct Init {
  bool hw;
  Init() {
    InitTable();
    hw = DetectHardware();
#if defined(__x86_64__)
    if (hw) InitShiftTable();
#endif
  }
} init;

}  // namespace

bool Crc32cHardware() { return init.hw; }

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
  return init.hw ? Hardware(crc, data, len) : Software(crc, data, len);
}

}  // namespace commitlog
