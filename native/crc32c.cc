// CRC32C: hardware (x86-64 SSE4.2 crc32 instruction, three-way interleaving is left
// for later) with a slicing-by-8 software fallback. No JS types here.
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
__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc & 0xffffffffu;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
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
  }
} init;

}  // namespace

bool Crc32cHardware() { return init.hw; }

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
  return init.hw ? Hardware(crc, data, len) : Software(crc, data, len);
}

}  // namespace commitlog
