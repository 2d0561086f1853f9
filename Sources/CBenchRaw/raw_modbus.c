#include "CBenchRaw.h"
#include <modbus/modbus.h>

int64_t raw_modbus_tcp_loop(const char *host, int port, int unit, int address, int count, int64_t iterations) {
    modbus_t *ctx = modbus_new_tcp(host, port);
    if (ctx == NULL) return -1;
    if (modbus_connect(ctx) != 0) { modbus_free(ctx); return -1; }
    modbus_set_slave(ctx, unit);
    uint16_t regs[125];
    int64_t ok = 0;
    for (int64_t i = 0; i < iterations; i++) {
        if (modbus_read_registers(ctx, address, count, regs) == count) ok++;
    }
    modbus_close(ctx);
    modbus_free(ctx);
    return ok;
}
