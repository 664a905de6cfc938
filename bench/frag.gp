# frag.gp: resident memory over the phases of the fragmentation workload,
# every allocator. Called by bench/run.sh:
#   gnuplot -e "files='a.dat b.dat'; titles='a b'; out='x.png'" bench/frag.gp
# Each .dat (bench/macro.c, bm_sampler_write): t_s rss_mib live_mib phase x,
# x being the phase (from 0) plus the fraction of it elapsed.
set terminal pngcairo size 1100,620 font ",10" noenhanced
set output out
set title "Fragmentation workload: resident memory (1M objects of 16 B-8 KiB, 80% freed at random, give-back call, refill with 32 B-16 KiB)"
set xlabel "phase (each stretched to the same width)"
set ylabel "MiB resident above the baseline"
set xtics ("allocate" 0.5, "free 80%%" 1.5, "give back" 2.5, "refill" 3.5, "free all" 4.5) scale 0
set xrange [0:5]
set yrange [0:*]
set grid y
do for [i=1:4] { set arrow from i, graph 0 to i, graph 1 nohead dt 3 lc rgb "gray50" }
set key top left
plot for [i=1:words(files)] word(files, i) using 5:2 with lines lw 2 title word(titles, i), \
     word(files, 1) using 5:3 with lines dt 2 lw 1.5 lc rgb "black" title "live bytes"
