-- wrk pacing: each connection waits 40-60 ms between requests, so N connections offer about
-- N × 20 requests/s (closed loop; the achieved rate is reported next to the latencies).
math.randomseed(os.time())
function delay()
    return math.random(40, 60)
end
