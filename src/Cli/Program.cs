using CqrsInference.Cli;

// cqrsi: the command-line client of the CqrsInference API (README, "The command line: cqrsi").
return await Cqrsi.RunAsync(args);
