#pragma once
#include <cstddef>
#include <cstdint>

namespace commitlog {
// CRC32C (Castagnoli), as Kafka's RecordBatch v2 uses: SSE4.2 instruction when the
// CPU has it, slicing-by-8 table otherwise. Chosen once at load time.
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len);
bool Crc32cHardware();
}  // namespace commitlog
