using CqrsInference.Cli;

// cqrsi: the command-line client of the CqrsInference API (docs/OPERATIONS.md, "The command line: cqrsi").
return await Cqrsi.RunAsync(args);
