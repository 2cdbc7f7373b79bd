using ProxyHost;

// The gateway: YARP plus model routing, configured from appsettings.json (+ --config files, environment
// variables). `--demo` puts embedded OpenAI-compatible demo backends behind every configured destination.
try
{
    await using var app = await GatewayApp.BuildAsync(args);
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (GatewayApp.IsStartupError(e))
{
    await Console.Error.WriteLineAsync("The gateway did not start: " + GatewayApp.Describe(e));
    return 1;
}
