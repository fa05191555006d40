-- wrk script of bench/http_bench.ts: each request asks for one of the 1,024 sessions at random.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/s/" .. math.random(0, 1023))
end
