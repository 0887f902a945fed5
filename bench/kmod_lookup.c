/* The reference: libkmod resolving modaliases in-process, as modprobe -R does
 * (kmod_new + kmod_load_resources once, kmod_module_new_from_lookup per alias).
 *
 * usage: kmod_lookup MODULES_DIR ALIASES_FILE ROUNDS
 * prints one line per round: seconds for all aliases, and the number of
 * (alias, module) pairs found so both sides can be checked to do the same work.
 */
#include <libkmod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s MODULES_DIR ALIASES_FILE ROUNDS\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[2], "r");
	if (!f) {
		perror(argv[2]);
		return 2;
	}
	size_t n = 0, cap = 1024;
	char **aliases = malloc(cap * sizeof(*aliases));
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (n == cap)
			aliases = realloc(aliases, (cap *= 2) * sizeof(*aliases));
		aliases[n++] = strdup(line);
	}
	fclose(f);

	struct kmod_ctx *ctx = kmod_new(argv[1], NULL);
	if (!ctx || kmod_load_resources(ctx) < 0) {
		fprintf(stderr, "cannot open index %s\n", argv[1]);
		return 1;
	}
	int rounds = atoi(argv[3]);
	for (int r = 0; r < rounds; r++) {
		long pairs = 0;
		double t0 = now();
		for (size_t i = 0; i < n; i++) {
			struct kmod_list *list = NULL, *l;
			if (kmod_module_new_from_lookup(ctx, aliases[i], &list) < 0)
				continue;
			kmod_list_foreach(l, list) {
				struct kmod_module *mod = kmod_module_get_module(l);
				if (kmod_module_get_name(mod))
					pairs++;
				kmod_module_unref(mod);
			}
			kmod_module_unref_list(list);
		}
		printf("%.6f %ld\n", now() - t0, pairs);
		fflush(stdout);
	}
	kmod_unref(ctx);
	return 0;
}
