/* The reads `xl list`, `xl uptime` and `xl info` make, as a minimal C program over libxenstore
 * (libxen-dev): the yardstick of scripts/bench/xl-queries.sh. One request at a time, as
 * libxenstore sends them; the same /proc reads for each domain's device model.
 *
 *   cc -O2 -o xl-queries xl-queries.c -lxenstore
 *   XENSTORED_PATH=... ./xl-queries list|uptime|info
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

static struct xs_handle *xs;

static char *get(const char *fmt, unsigned a, const char *b) {
  char path[256];
  unsigned int len;
  snprintf(path, sizeof path, fmt, a, b);
  return xs_read(xs, XBT_NULL, path, &len);
}

static int cmp(const void *a, const void *b) { return (int)(*(unsigned *)a - *(unsigned *)b); }

/* Guest domids with records anywhere (/local/domain, /libxl, device-model), ascending. */
static unsigned domids(unsigned *out) {
  const char *dirs[] = {"/local/domain", "/libxl", "/local/domain/0/device-model"};
  unsigned n = 0;
  for (int d = 0; d < 3; d++) {
    unsigned int count = 0;
    char **list = xs_directory(xs, XBT_NULL, dirs[d], &count);
    for (unsigned i = 0; i < count; i++) {
      unsigned id = (unsigned)strtoul(list[i], NULL, 10), seen = 0;
      for (unsigned j = 0; j < n; j++) seen |= out[j] == id;
      if (id && !seen && n < 4096) out[n++] = id;
    }
    free(list);
  }
  qsort(out, n, sizeof *out, cmp);
  return n;
}

static char *slurp(const char *path) {
  static char buf[65536];
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

/* /proc/<pid>/stat: alive and not a zombie; CPU seconds. */
static double proc_cpu(const char *identity, int *alive) {
  char path[64];
  *alive = 0;
  if (!identity) return 0;
  snprintf(path, sizeof path, "/proc/%d/stat", atoi(identity));
  char *s = slurp(path), *close;
  if (!s || !(close = strrchr(s, ')'))) return 0;
  char state;
  unsigned long utime, stime;
  if (sscanf(close + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &utime, &stime) != 3) return 0;
  *alive = state != 'Z';
  return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

/* Every vCPU thread idle (the `b` of xl list): /proc/<pid>/task/<tid>/comm and stat. */
static int vcpus_idle(const char *identity) {
  char path[320];
  snprintf(path, sizeof path, "/proc/%d/task", atoi(identity));
  DIR *dir = opendir(path);
  if (!dir) return 0;
  struct dirent *e;
  int saw = 0, idle = 1;
  while ((e = readdir(dir))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%d/task/%s/comm", atoi(identity), e->d_name);
    char *comm = slurp(path);
    if (!comm || strncmp(comm, "CPU ", 4)) continue;
    saw = 1;
    snprintf(path, sizeof path, "/proc/%d/task/%s/stat", atoi(identity), e->d_name);
    char *s = slurp(path), *close = s ? strrchr(s, ')') : NULL;
    if (close && close[2] == 'R') idle = 0;
  }
  closedir(dir);
  return saw && idle;
}

static void list(void) {
  unsigned ids[4096], n = domids(ids);
  const char *notes[] = {"type", "device-model-identity", "dm-target", "qmp-path", "dm-log", "run-state", "monitor-identity"};
  printf("%-40s %5s %5s %5s %10s %9s\n", "Name", "ID", "Mem", "VCPUs", "State", "Time(s)");
  for (unsigned i = 0; i < n; i++) {
    unsigned id = ids[i];
    char *name = get("/local/domain/%u/%s", id, "name"), *vm = get("/local/domain/%u/%s", id, "vm");
    char *target = get("/local/domain/%u/%s", id, "memory/target"), *max = get("/local/domain/%u/%s", id, "memory/static-max");
    char *note[7];
    for (int k = 0; k < 7; k++) note[k] = get("/libxl/%u/%s", id, notes[k]);
    if (vm) {
      char path[256];
      unsigned int len;
      snprintf(path, sizeof path, "%s/uuid", vm);
      free(xs_read(xs, XBT_NULL, path, &len));
      snprintf(path, sizeof path, "%s/start_time", vm);
      free(xs_read(xs, XBT_NULL, path, &len));
    }
    char path[128];
    unsigned int count = 0, online = 0;
    snprintf(path, sizeof path, "/local/domain/%u/cpu", id);
    char **cpus = xs_directory(xs, XBT_NULL, path, &count);
    for (unsigned c = 0; c < count; c++) {
      char sub[64];
      snprintf(sub, sizeof sub, "cpu/%s/availability", cpus[c]);
      char *a = get("/local/domain/%u/%s", id, sub);
      online += a && !strcmp(a, "online");
      free(a);
    }
    free(cpus);
    free(get("/local/domain/0/device-model/%u/%s", id, "state"));
    int alive, monitor_alive;
    double cpu = proc_cpu(note[1], &alive);
    int blocked = alive && vcpus_idle(note[1]);
    proc_cpu(note[6], &monitor_alive);
    printf("%-40s %5u %5d %5u     %s  %8.1f\n", name ? name : "(unnamed)", id, target ? atoi(target) / 1024 : 0, online,
           alive ? (blocked ? "-b----" : "r-----") : "---sc-", cpu);
    free(name), free(vm), free(target), free(max);
    for (int k = 0; k < 7; k++) free(note[k]);
  }
}

static void uptime(void) {
  unsigned ids[4096], n = domids(ids);
  time_t now = time(NULL);
  char *up = slurp("/proc/uptime");
  printf("%-33s %4s %s\n", "Name", "ID", "Uptime");
  printf("%-33s %4d %lu\n", "Domain-0", 0, up ? strtoul(up, NULL, 10) : 0);
  for (unsigned i = 0; i < n; i++) {
    char *name = get("/local/domain/%u/%s", ids[i], "name"), *vm = get("/local/domain/%u/%s", ids[i], "vm");
    char *start = NULL;
    if (vm) {
      char path[256];
      unsigned int len;
      snprintf(path, sizeof path, "%s/start_time", vm);
      start = xs_read(xs, XBT_NULL, path, &len);
    }
    printf("%-33s %4u %ld\n", name ? name : "", ids[i], start ? (long)(now - atol(start)) : 0L);
    free(name), free(vm), free(start);
  }
}

static void info(void) {
  struct utsname u;
  struct stat st;
  /* What xl reads too: xl.conf, the KVM probe, QEMU found in $PATH. */
  slurp(getenv("XL_CONF") ? getenv("XL_CONF") : "/etc/xen/xl.conf");
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm >= 0) ioctl(kvm, 0xAE00), close(kvm);
  access("/usr/local/sbin/qemu-system-x86_64", X_OK), access("/usr/local/bin/qemu-system-x86_64", X_OK);
  uname(&u);
  char *meminfo = strdup(slurp("/proc/meminfo"));
  char *cpuinfo = strdup(slurp("/proc/cpuinfo"));
  stat("/usr/bin/qemu-system-x86_64", &st);
  char path[512];
  snprintf(path, sizeof path, "%s/device-model-version", getenv("XEN_LIB_DIR") ? getenv("XEN_LIB_DIR") : "/var/lib/xen");
  char *cache = slurp(path);
  printf("host                   : %s\nrelease                : %s\nmachine                : %s\n", u.nodename, u.release, u.machine);
  printf("nr_cpus                : %ld\n", sysconf(_SC_NPROCESSORS_CONF));
  printf("total_memory           : %lu\n", strtoul(strstr(meminfo, "MemTotal:") + 9, NULL, 10) / 1024);
  printf("free_memory            : %lu\n", strtoul(strstr(meminfo, "MemAvailable:") + 13, NULL, 10) / 1024);
  printf("cpuinfo bytes          : %zu\ndevice_model_version   : %s", strlen(cpuinfo), cache ? strchr(cache, '\n') + 1 : "unknown\n");
  free(meminfo), free(cpuinfo);
}

int main(int argc, char **argv) {
  if (argc != 2) return 64;
  if (strcmp(argv[1], "info")) slurp(getenv("XL_CONF") ? getenv("XL_CONF") : "/etc/xen/xl.conf");
  if (!strcmp(argv[1], "info")) return info(), 0;
  xs = xs_open(0);
  if (!xs) return perror("xs_open"), 2;
  if (!strcmp(argv[1], "list")) list();
  else if (!strcmp(argv[1], "uptime")) uptime();
  else return 64;
  xs_close(xs);
  return 0;
}
