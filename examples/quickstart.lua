-- The quickstart: a small matrix that runs on this machine with nothing installed.
suite "quickstart" {
  description = "sleep-and-exit jobs that show each way a job can end",
  matrix = { nodes = { 1, 2 }, outcome = { "ok", "fails" } },
  name = "{suite}_{nodes}n_{outcome}",
  run = "sh -c 'echo rank $JOBRUN_NODE_RANK of {nodes}: {outcome}; test {outcome} = ok'",
  timeout = "1m",
  expect = { status = "SUCCEEDED" },
}
