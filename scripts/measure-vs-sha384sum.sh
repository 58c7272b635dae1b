#!/bin/sh
# Paired timing of tdproof measure against sha384sum of the same files
# (docs/performance.md): N alternating runs (default 5), user+system CPU
# seconds and peak RSS (KiB) of each, from GNU time.
#   scripts/measure-vs-sha384sum.sh TDPROOF FIRMWARE KERNEL INITRD [N]
set -eu
tdproof=$1 fw=$2 kernel=$3 initrd=$4 n=${5:-5}
cat "$fw" "$kernel" "$initrd" > /dev/null # page cache, for both
i=0
while [ "$i" -lt "$n" ]; do
	i=$((i + 1))
	/usr/bin/time -f "sha384sum %U %S %M" sha384sum "$fw" "$kernel" "$initrd" > /dev/null
	/usr/bin/time -f "tdproof %U %S %M" "$tdproof" measure --firmware "$fw" --kernel "$kernel" --initrd "$initrd" \
		--cmdline "console=ttyS0" --memory 2G --format json > /dev/null
done 2>&1 | awk '
	{ cpu = $2 + $3; sum[$1] += cpu; if ($4 > rss[$1]) rss[$1] = $4; printf "%-9s cpu %.2f s  rss %d KiB\n", $1, cpu, $4 }
	$1 == "sha384sum" { last = cpu }
	$1 == "tdproof" && last > 0 { ratio[++k] = cpu / last }
	END {
		printf "total CPU: tdproof %.2f s, sha384sum %.2f s: %.2fx; max RSS tdproof %d KiB, sha384sum %d KiB\n", sum["tdproof"], sum["sha384sum"], sum["tdproof"] / sum["sha384sum"], rss["tdproof"], rss["sha384sum"]
		printf "paired ratios:"; for (j = 1; j <= k; j++) printf " %.2f", ratio[j]; printf "\n"
	}'
