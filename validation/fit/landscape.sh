#!/usr/bin/env bash
# The fit's objective along each gain (issue 18): a synthetic subject (66-region TVB
# connectome, G = 4, the gains at rww-griffiths' defaults, 400 TRs = 300 s of BOLD, noise seed
# 1000) against BOLD simulated with one gain changed and two other noise seeds (0, 1): the mean
# and spread of the FC correlation r, the mean FC, and the mean squared FC difference. About 5
# min on one core. Writes landscape.txt here.
set -euo pipefail
cargo build --release -p nmm --example fit_landscape
e=target/release/examples/fit_landscape
c=../shared/data/tvb/connectivity_66.zip
{
    $e $c 400 G 2,3,3.5,4,4.5,5,6 2 G=4
    $e $c 400 g_EE 0.15,0.18,0.21,0.24,0.27 2 G=4
    $e $c 400 g_EI 0.1,0.125,0.15,0.175,0.2 2 G=4
    $e $c 400 g_IE 0.7,0.85,1,1.15,1.3 2 G=4
} | tee "$(dirname "$0")/landscape.txt"
