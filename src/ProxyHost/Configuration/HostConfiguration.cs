using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;

namespace ProxyHost.Configuration;

/// <summary>
/// Layers the <c>--config</c> files over the host's configuration (SPEC §11): they are the deployment. With
/// one or more of them, <c>appsettings*.json</c> keeps only host defaults (logging, limits, token settings):
/// its example deployment (routes, clusters, endpoints, keys, backend credentials, pass-through paths) is
/// dropped, so nothing of it merges into the user's by array index or route name.
/// </summary>
internal static class HostConfiguration
{
    /// <summary>The configuration sections that make up a deployment.</summary>
    public static readonly IReadOnlyList<string> DeploymentSections =
    [
        "ReverseProxy",
        "ModelRouting:Endpoints",
        "ModelRouting:Keys",
        "ModelRouting:Backends",
        "ModelRouting:PassThroughPaths",
    ];

    /// <summary>
    /// Inserts <paramref name="files"/> right after the appsettings files, so environment variables and the
    /// command line still override them, and strips the deployment from the appsettings files when any is given.
    /// </summary>
    public static void AddConfigFiles(ConfigurationManager configuration, IReadOnlyList<string> files)
    {
        if (files.Count == 0)
        {
            return;
        }

        var sources = configuration.Sources;
        var index = 0;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i] is JsonConfigurationSource json)
            {
                sources[i] = new HostDefaultsJsonConfigurationSource(json);
                index = i + 1;
            }
        }

        foreach (var file in files)
        {
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"The configuration file '{file}' given with --config does not exist.", file);
            }

            sources.Insert(index++, new JsonConfigurationSource
            {
                FileProvider = new PhysicalFileProvider(Path.GetDirectoryName(file)!),
                Path = Path.GetFileName(file),
                Optional = false,
                ReloadOnChange = true,
            });
        }
    }

    /// <summary>Returns whether <paramref name="key"/> belongs to the deployment.</summary>
    public static bool IsDeploymentKey(string key)
    {
        foreach (var section in DeploymentSections)
        {
            if (key.StartsWith(section, StringComparison.OrdinalIgnoreCase)
                && (key.Length == section.Length || key[section.Length] == ':'))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>An appsettings file read for its host defaults only.</summary>
    private sealed class HostDefaultsJsonConfigurationSource : JsonConfigurationSource
    {
        public HostDefaultsJsonConfigurationSource(JsonConfigurationSource inner)
        {
            FileProvider = inner.FileProvider;
            Path = inner.Path!;
            Optional = inner.Optional;
            ReloadOnChange = inner.ReloadOnChange;
            ReloadDelay = inner.ReloadDelay;
            OnLoadException = inner.OnLoadException;
        }

        public override IConfigurationProvider Build(IConfigurationBuilder builder)
        {
            EnsureDefaults(builder);
            return new Provider(this);
        }

        private sealed class Provider(JsonConfigurationSource source) : JsonConfigurationProvider(source)
        {
            public override void Load(Stream stream)
            {
                base.Load(stream);
                foreach (var key in Data.Keys.Where(IsDeploymentKey).ToList())
                {
                    Data.Remove(key);
                }
            }
        }
    }
}
