using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;
using ModelRouting.Configuration;
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
        AddConfigFiles(builder.Configuration, configFiles);

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
        }

        var app = builder.Build();
        if (modelRouting)
        {
            app.MapReverseProxy(proxy =>
            {
                proxy.UseModelRouting();
                proxy.UseSessionAffinity();
                proxy.UseLoadBalancing();
                proxy.UsePassiveHealthChecks();
            });
            app.MapModelRoutingAdmin();
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

    // Insert the --config files right after appsettings*.json so environment variables and the command
    // line still override them, as they override appsettings.json.
    private static void AddConfigFiles(ConfigurationManager configuration, List<string> files)
    {
        var sources = configuration.Sources;
        var index = 0;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i] is JsonConfigurationSource)
            {
                index = i + 1;
            }
        }

        foreach (var file in files)
        {
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"The configuration file '{file}' given with --config does not exist.", file);
            }

            var source = new JsonConfigurationSource
            {
                FileProvider = new PhysicalFileProvider(Path.GetDirectoryName(file)!),
                Path = Path.GetFileName(file),
                Optional = false,
                ReloadOnChange = true,
            };
            sources.Insert(index++, source);
        }
    }
}
