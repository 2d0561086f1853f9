// The floor under edged's memory: a C program that loads the system libraries edged is built on (libcurl
// with OpenSSL, SQLite, libsystemd, libmodbus, zlib; libstdc++ as the Swift runtime needs it) and uses each
// the way edged does, once a second, with no code of its own to speak of. `edgebench daemon` measures its
// resident memory beside edged's.
// Usage: edgebench-floor DIR MODBUS_PORT
#include <curl/curl.h>
#include <modbus/modbus.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>
#include <zlib.h>

static volatile sig_atomic_t stop = 0;
static void on_term(int sig) { (void)sig; stop = 1; }

// libstdc++ is loaded by every Swift program; reference one of its symbols so the linker keeps it.
extern void *_ZSt4cout;
void *volatile keep_libstdcxx = &_ZSt4cout;

static size_t discard(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s DIR MODBUS_PORT\n", argv[0]); return 2; }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    char path[4096];
    snprintf(path, sizeof path, "%s/floor.db", argv[1]);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) { fprintf(stderr, "sqlite3_open: %s\n", sqlite3_errmsg(db)); return 1; }
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS r(seq INTEGER PRIMARY KEY, v BLOB)", NULL, NULL, NULL);
    sqlite3_stmt *insert;
    sqlite3_prepare_v2(db, "INSERT INTO r(v) VALUES (?)", -1, &insert, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    modbus_t *mb = modbus_new_tcp("127.0.0.1", atoi(argv[2]));
    sd_notify(0, "READY=1");
    uint16_t regs[64];
    unsigned char packed[1024];
    for (int round = 0; !stop; round++) {
        int n = (mb != NULL && (modbus_connect(mb) == 0)) ? modbus_read_registers(mb, 0, 10, regs) : -1;
        if (mb != NULL) modbus_close(mb);
        sqlite3_bind_blob(insert, 1, regs, n > 0 ? n * 2 : 0, SQLITE_TRANSIENT);
        sqlite3_step(insert);
        sqlite3_reset(insert);
        uLongf packedLength = sizeof packed;
        compress2(packed, &packedLength, (const Bytef *)regs, sizeof regs, Z_DEFAULT_COMPRESSION);
        if (round % 10 == 0) {   // an upload attempt: HTTPS to a closed port on loopback
            CURL *h = curl_easy_init();
            curl_easy_setopt(h, CURLOPT_URL, "https://127.0.0.1:9/api/v1/edge/batches");
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)packed);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)packedLength);
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_perform(h);
            curl_easy_cleanup(h);
        }
        sd_notifyf(0, "STATUS=round %d", round);
        if (round == 0) sd_journal_print(LOG_DEBUG, "edgebench-floor started");
        sleep(1);
    }
    modbus_free(mb);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    curl_global_cleanup();
    return 0;
}
