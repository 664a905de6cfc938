# throughput.gp: malloc+free pairs per second by size, every allocator.
# Called by bench/run.sh:
#   gnuplot -e "data='throughput.dat'; ncols=6; out='x.png'" bench/throughput.gp
# data: a header row (size, then one allocator per column), then one row per size.
set terminal pngcairo size 1000,560 font ",10" noenhanced
set output out
set title "malloc+free throughput by size, one thread (higher is better)"
set xlabel "object size (bytes)"
set ylabel "million pairs per second"
set logscale x 2
set format x "%.0f"
set grid
set key top right autotitle columnhead
set yrange [0:*]
plot for [i=2:ncols] data using 1:i with linespoints lw 2 pt 7 ps 0.8
