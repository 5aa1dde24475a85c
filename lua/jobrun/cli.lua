local cli = {}
function cli.main(argv)
  print("hello", #argv, JOBRUN_VERSION, require("cjson").encode({a=1}))
  return 0
end
return cli
