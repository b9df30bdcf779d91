// Co-simulation harness: the Verilated (Link + core) design with its UART pins bridged to one TCP client,
// or (built with -DDPFM_BUS) the core alone with its word bus driven from the client's bus requests
// (golden/contract/bus_socket.py): the transport a PCIe BAR gives a host.
//
// Bytes from the client are shifted into the `rx` pin bit by bit (8N1, DIVISOR cycles per bit); the `tx`
// pin is sampled mid-bit and the bytes go back to the client, so the gateware UART PHY is exercised. Only
// 127.0.0.1 is listened on. The first stdout line is "LISTENING 127.0.0.1:<port>". While no client is
// connected, or when the line has been quiet for --idle-cycles and the client sends nothing, the clock
// stops (the design keeps its state) and the process sleeps in poll(): an idle co-simulation costs no CPU.
// The exception is a busy core (the top's `busy` pin): it keeps its clock, as a board's core keeps working
// after its host has gone (a resident run).
// When a client disconnects, "STATS cycles=<n> seconds=<wall> cpu=<cpu>" goes to stderr and the next client is accepted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "Vcosim_top.h"
#include "verilated.h"

static Vcosim_top *top;
static uint64_t cycles = 0;
static const int BATCH = 256;  // cycles between socket polls
// Cycles run before the first client is accepted: longer than the design's own power-on reset
// (POR_CYCLES in sim/cosim.py; the top has no reset port), so the link listens when the client arrives.
static const int POWER_ON_CYCLES = 16;

static double cpu_seconds() {  // user + system CPU time of this process: a load-independent speed measure
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

static bool core_busy() { return top->busy; }

static void tick() {
    top->clk = 0;
    top->eval();
    top->clk = 1;
    top->eval();
    cycles++;
}

struct UartDriver {  // host -> rx pin
    int divisor, bit = -1, count = 0;
    uint16_t frame = 0;
    std::deque<uint8_t> queue;
    bool busy() const { return bit >= 0 || !queue.empty(); }
    int pin() {
        if (bit < 0) {
            if (queue.empty()) return 1;
            frame = (uint16_t)((1u << 9) | (queue.front() << 1));
            queue.pop_front();
            bit = 0;
            count = 0;
        }
        int level = (frame >> bit) & 1;
        if (++count == divisor) {
            count = 0;
            if (++bit == 10) bit = -1;
        }
        return level;
    }
};

struct UartReceiver {  // tx pin -> host
    int divisor, state = -1, count = 0;  // state -1 idle, 0 start bit, 1..8 data, 9 stop
    uint8_t value = 0;
    bool busy() const { return state >= 0; }
    // Returns a byte (0..255) when one completes, -1 otherwise.
    int sample(int level) {
        if (state < 0) {
            if (level == 0) { state = 0; count = divisor / 2; }
            return -1;
        }
        if (--count > 0) return -1;
        count = divisor;
        if (state == 0) {
            if (level != 0) state = -1;  // glitch
            else state = 1;
            return -1;
        }
        if (state <= 8) {
            value = (uint8_t)((value >> 1) | (level << 7));
            state++;
            return -1;
        }
        state = -1;
        return level ? value : -1;  // a missing stop bit drops the byte
    }
};

static bool send_all(int fd, std::vector<uint8_t> &out) {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return false;
        done += (size_t)n;
    }
    out.clear();
    return true;
}

#ifdef DPFM_BUS
// One bus transaction: hold the request with `valid` until `ready` (rdata is valid then), then one more
// edge with the address and data still held, which ends `ready` (the core writes its memories in the ack
// cycle from the request the initiator still holds: hw/core.py).
static uint32_t bus_access(bool we, uint32_t addr, uint32_t wdata) {
    top->bus_valid = 1;
    top->bus_we = we;
    top->bus_addr = addr;
    top->bus_wdata = wdata;
    do tick(); while (!top->bus_ready);
    uint32_t data = top->bus_rdata;
    top->bus_valid = 0;
    tick();
    return data;
}

static bool recv_all(int fd, uint8_t *p, size_t n) {
    while (n) {
        ssize_t got = recv(fd, p, n, 0);
        if (got <= 0) return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

// Serve one client: requests are executed as they arrive; between them the clock keeps running (a
// started operation needs cycles) until the design has been quiet for `idle_limit` cycles.
static void serve_bus(int fd, uint64_t idle_limit) {
    std::vector<uint8_t> out, data;
    uint64_t quiet = 0;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, quiet >= idle_limit && !core_busy() ? -1 : 0) > 0) {
            uint8_t head[5];
            if (!recv_all(fd, head, sizeof head)) return;
            uint32_t addr = head[1] | head[2] << 8, count = head[3] | head[4] << 8;
            if (head[0] == 'W') {
                data.resize(4 * (size_t)count);
                if (!recv_all(fd, data.data(), data.size())) return;
                for (uint32_t i = 0; i < count; i++) bus_access(true, (addr + i) & 0xFFFF, le32(&data[4 * i]));
                out.push_back('K');
            } else if (head[0] == 'R') {
                for (uint32_t i = 0; i < count; i++) {
                    uint32_t w = bus_access(false, (addr + i) & 0xFFFF, 0);
                    for (int b = 0; b < 4; b++) out.push_back((uint8_t)(w >> (8 * b)));
                }
            } else {
                fprintf(stderr, "cosim: unknown bus request %d\n", head[0]);
                return;
            }
            if (!send_all(fd, out)) return;
            quiet = 0;
            continue;
        }
        for (int i = 0; i < BATCH; i++) tick();
        quiet += BATCH;
    }
}
#endif

#ifndef DPFM_BUS
// Serve one client over the UART pins until it disconnects.
static void serve_uart(int fd, int divisor, uint64_t idle_limit) {
    UartDriver drv{divisor};
    UartReceiver rcv{divisor};
    std::vector<uint8_t> out;
    uint8_t buf[4096];
    uint64_t quiet = 0, last_byte = cycles;
    for (;;) {
        bool idle = !drv.busy() && !rcv.busy() && out.empty() && quiet >= idle_limit && !core_busy();
        pollfd p{fd, POLLIN, 0};
        // Poll the socket once per batch of cycles; block when the design has been quiet long enough.
        if (poll(&p, 1, idle ? -1 : 0) > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) return;
            drv.queue.insert(drv.queue.end(), buf, buf + n);
            quiet = 0;
        }
        for (int i = 0; i < BATCH; i++) {
            top->rx = drv.pin();
            tick();
            int byte = rcv.sample(top->tx);
            if (byte >= 0) {
                out.push_back((uint8_t)byte);
                last_byte = cycles;
            }
            if (drv.busy() || rcv.busy()) quiet = 0;
            else quiet++;
        }
        // Send once tx has been quiet for two byte times, so a reply usually travels in one piece.
        if (!out.empty() && (cycles - last_byte >= 20u * divisor || out.size() >= sizeof buf)) {
            if (!send_all(fd, out)) return;
        }
    }
}
#endif

int main(int argc, char **argv) {
    int divisor = 4, port = 0;
    uint64_t idle_limit = 1u << 22;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--divisor") divisor = atoi(argv[i + 1]);
        else if (a == "--port") port = atoi(argv[i + 1]);
        else if (a == "--idle-cycles") idle_limit = strtoull(argv[i + 1], nullptr, 10);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    Verilated::commandArgs(argc, argv);
    top = new Vcosim_top;
#ifndef DPFM_BUS
    top->rx = 1;
#endif
    for (int i = 0; i < POWER_ON_CYCLES; i++) tick();

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if (bind(ls, (sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 1) != 0) {
        perror("cosim: bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(ls, (sockaddr *)&addr, &len);
    printf("LISTENING 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    for (;;) {
        for (pollfd p{ls, POLLIN, 0}; core_busy() && poll(&p, 1, 0) == 0;)   // no client, the core works on
            for (int i = 0; i < BATCH; i++) tick();
        int fd = accept(ls, nullptr, nullptr);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto t0 = std::chrono::steady_clock::now();
        uint64_t c0 = cycles;
        double cpu0 = cpu_seconds();
#ifdef DPFM_BUS
        serve_bus(fd, idle_limit);
#else
        serve_uart(fd, divisor, idle_limit);
#endif
        close(fd);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        fprintf(stderr, "STATS cycles=%llu seconds=%.6f cpu=%.6f\n", (unsigned long long)(cycles - c0), s,
                cpu_seconds() - cpu0);
        fflush(stderr);
    }
}
