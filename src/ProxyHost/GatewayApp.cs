using ModelRouting.Configuration;
using ProxyHost.Configuration;
using ProxyHost.Demo;

namespace ProxyHost;

/// <summary>Builds the gateway host from command-line arguments.</summary>
public static class GatewayApp
{
    /// <summary>
    /// Builds the gateway. Arguments: <c>--config PATH</c> (repeatable; layered over appsettings.json, later
    /// files win, below environment variables and the command line; reloaded on change), <c>--demo</c>, and
    /// everything ASP.NET Core takes (<c>--urls</c>, <c>--Section:Key=value</c>).
    /// </summary>
    /// <param name="args">The command-line arguments.</param>
    /// <param name="contentRoot">Where appsettings.json is read from. Defaults to the application's directory.</param>
    public static async Task<WebApplication> BuildAsync(string[] args, string? contentRoot = null)
    {
        // --no-model-routing runs plain YARP in this host (the baseline of the load benchmark).
        var modelRouting = !args.Contains("--no-model-routing");
        var (configFiles, demo, rest) = ParseArguments([.. args.Where(a => a != "--no-model-routing")]);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = rest,
            ContentRootPath = contentRoot ?? AppContext.BaseDirectory,
        });
        HostConfiguration.AddConfigFiles(builder.Configuration, configFiles);

        DemoBackends? backends = null;
        if (demo)
        {
            backends = await DemoBackends.StartAsync(builder.Configuration);
            builder.Services.AddSingleton(backends);
        }

        var proxyBuilder = builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
        if (modelRouting)
        {
            ManagementListenerUrls.Add(builder);
            proxyBuilder.AddModelRouting(builder.Configuration.GetSection("ModelRouting"));
            proxyBuilder.AddModelRoutingObservability(builder.Configuration.GetSection("ModelRouting:Observability"));
        }

        var app = builder.Build();
        if (modelRouting)
        {
            app.UseModelRoutingAdminAuthentication();
            app.MapReverseProxy(proxy =>
            {
                proxy.UseModelRouting();
                proxy.UseSessionAffinity();
                proxy.UseLoadBalancing();
                proxy.UsePassiveHealthChecks();
            });
            app.MapModelRouting();
            app.MapModelRoutingAdmin();
            app.MapModelRoutingObservability();
        }
        else
        {
            app.MapReverseProxy();
        }

        if (backends is not null)
        {
            app.Lifetime.ApplicationStopped.Register(() => backends.DisposeAsync().AsTask().GetAwaiter().GetResult());
        }

        return app;
    }

    /// <summary>
    /// Validates the configuration <paramref name="args"/> select (SPEC §11, <c>--check</c>): writes every error,
    /// or a summary, to <paramref name="output"/> without listening. Returns whether it is valid.
    /// </summary>
    public static async Task<bool> CheckAsync(string[] args, TextWriter output, string? contentRoot = null)
    {
        WebApplication app;
        try
        {
            // The summary is the output: the gateway's own start-up logs only where something is wrong.
            app = await BuildAsync(["--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:ModelRouting=Warning", .. args], contentRoot);
        }
        catch (Exception e) when (IsStartupError(e))
        {
            await output.WriteLineAsync("Configuration check FAILED:" + Environment.NewLine + "  " + Describe(e));
            return false;
        }

        await using (app)
        {
            return await ModelRoutingConfigurationCheck.RunAsync(app.Services, app.Configuration, output);
        }
    }

    /// <summary>Returns whether <paramref name="e"/> is a configuration or start-up error to report without a stack trace.</summary>
    public static bool IsStartupError(Exception e) =>
        e is ModelRoutingConfigurationException or InvalidDataException or FileNotFoundException or InvalidOperationException or IOException;

    /// <summary>Describes a start-up error with its inner errors.</summary>
    public static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (var current = e; current is not null; current = current.InnerException)
        {
            parts.Add(current.Message);
        }

        return string.Join(Environment.NewLine + "  ", parts.Distinct());
    }

    private static (List<string> ConfigFiles, bool Demo, string[] Remaining) ParseArguments(string[] args)
    {
        var files = new List<string>();
        var rest = new List<string>();
        var demo = false;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "--config" or "-c")
            {
                if (i + 1 >= args.Length)
                {
                    throw new InvalidOperationException("--config needs a file path.");
                }

                files.Add(Path.GetFullPath(args[++i]));
            }
            else if (arg.StartsWith("--config=", StringComparison.Ordinal))
            {
                files.Add(Path.GetFullPath(arg["--config=".Length..]));
            }
            else if (arg == "--demo")
            {
                demo = true;
            }
            else
            {
                rest.Add(arg);
            }
        }

        return (files, demo, [.. rest]);
    }
}
