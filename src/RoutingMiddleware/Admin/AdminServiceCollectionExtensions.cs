using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;

namespace ModelRouting.Admin;

/// <summary>
/// Registers the admin feature: the management listener and its routing check, the admin key authentication
/// scheme and authorization policy, the runtime state store and the handlers. Called by <c>AddModelRouting</c>.
/// </summary>
/// <remarks>
/// The scheme is never the default (not even the automatic default of a lone scheme) and no fallback policy is
/// set, so only endpoints that name the policy (the admin API) authenticate; proxy routes stay anonymous and
/// the per-request cost elsewhere is the empty pass of ASP.NET Core's authentication and authorization middleware.
/// </remarks>
internal static class AdminServiceCollectionExtensions
{
    /// <summary>The authorization policy the admin endpoints require.</summary>
    public const string PolicyName = "ModelRoutingAdmin";

    private const string SuppressAutoDefaultScheme = "Microsoft.AspNetCore.Authentication.SuppressAutoDefaultScheme";

    public static IServiceCollection AddModelRoutingAdmin(this IServiceCollection services)
    {
        services.TryAddSingleton<ManagementListener>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ManagementListenerMatcherPolicy>());

        // A lone scheme becomes the default (ASP.NET Core 7+) and would run on every request, proxy requests included.
        // With another scheme registered there is no automatic default anyway, so turning it off changes nothing
        // else for this host; a host that set the switch itself keeps its choice.
        if (!AppContext.TryGetSwitch(SuppressAutoDefaultScheme, out _))
        {
            AppContext.SetSwitch(SuppressAutoDefaultScheme, true);
        }

        services.AddAuthentication()
            .AddScheme<AdminKeyAuthenticationOptions, AdminKeyAuthenticationHandler>(AdminKeyAuthenticationHandler.SchemeName, displayName: null, configureOptions: null);
        services.AddAuthorization(options => options.AddPolicy(PolicyName, policy => policy
            .AddAuthenticationSchemes(AdminKeyAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()));

        services.TryAddSingleton(sp => new RuntimeStateStore(StateFileLocation.Resolve(
            sp.GetRequiredService<IOptions<ModelRoutingOptions>>().Value.Admin.StateFile,
            sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory)));
        services.TryAddSingleton<EndpointHandlers>();
        services.TryAddSingleton<AliasHandlers>();
        services.TryAddSingleton<DefaultHandlers>();
        services.TryAddSingleton<KeyHandlers>();
        services.AddHostedService<AdminStartup>();
        return services;
    }
}
