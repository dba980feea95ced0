using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using CqrsInference.Messaging;
using Microsoft.Extensions.Options;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// Settings sections bound to their classes, checked when the host starts (<c>ValidateOnStart</c>):
/// a key the class does not have (a typo), a value that does not convert, or one outside the range
/// its class declares (<see cref="RangeAttribute"/>) stops the start with a message naming the
/// setting as it is written in configuration, e.g. <c>Topology:MaxDeliver</c>, instead of being
/// ignored or failing much later. The table of sections is <see cref="SettingsTable"/>.
/// </summary>
internal static class Settings
{
    /// <summary>Binds <paramref name="section"/> to <typeparamref name="T"/>, checked at start; <typeparamref name="T"/> resolves to the bound value.</summary>
    public static OptionsBuilder<T> AddSetting<T>(this IServiceCollection services, string section, Func<T, string?>? rule = null)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(sp => new SettingsValidator<T>(sp.GetRequiredService<IConfiguration>().GetSection(section), rule));
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<T>>().Value);
        return services.AddOptions<T>().BindConfiguration(section).ValidateOnStart();
    }

    /// <summary>Every section with a class of its own, for the roles that read it.</summary>
    public static IServiceCollection AddSettings(this IServiceCollection services, Roles roles)
    {
        // Every role registers the NATS services that take these (an edge site's too).
        services.AddSetting<TopologyOptions>("Topology");
        services.AddSetting<ClaimCheckOptions>("ClaimCheck");
        if (roles.Edge)
        {
            services.AddSetting<Processors.Edge.EdgeSiteOptions>("EdgeSite", Processors.Edge.EdgeSiteOptions.Problem);
            return services;
        }

        services.AddSetting<EdgeOptions>("Edge");
        if (roles.Api || roles.Projections)
        {
            services.AddSetting<Projections.Analytics.AnalyticsOptions>("Analytics");
            services.AddSetting<Projections.Recording.RecorderOptions>("Recorder");
            services.AddSetting<Projections.Audit.AuditOptions>("Audit");
            services.AddSetting<Projections.Webhooks.WebhookOptions>("Webhooks");
            services.AddSetting<Projections.Retention.RetentionOptions>("Retention");
            services.AddSingleton<IValidateOptions<Projections.Retention.RetentionOptions>, RetentionAgainstEventLog>();
        }

        if (roles.Api)
        {
            services.AddSetting<Commands.Jobs.Submitting.SubmitOptions>("Submit", ServiceDefaults.RegionProblem);
            services.AddSetting<RateLimitOptions>("Api:RateLimit");
            services.AddSetting<Jobs.Submitting.QuotaOptions>("Api:Quota", Jobs.Submitting.QuotaOptions.Problem);
            services.AddSetting<StreamLimitOptions>("Api:Streams", StreamLimitOptions.Problem);
            services.AddSetting<Batches.BatchOptions>("Batches");
            services.AddSetting<Jobs.Retrying.RetryOptions>("Retry");
            services.AddSetting<Failover.FailoverOptions>("Failover", Failover.FailoverOptions.Problem);
        }

        if (roles.Processor)
        {
            services.AddSetting<Processors.Worker.ProcessorOptions>("Processor");
        }

        return services;
    }

    /// <summary>A section read while services are being registered (a count of hosted services), with the same checks.</summary>
    public static T Read<T>(IConfiguration configuration, string section)
        where T : class, new()
    {
        var settings = configuration.GetSection(section);
        var value = settings.Get<T>() ?? new T();
        var failures = SettingsValidator<T>.Problems(settings, value, rule: null);
        return failures.Count == 0 ? value : throw new OptionsValidationException(section, typeof(T), failures);
    }
}

/// <summary>Retention must outlive the event log (<see cref="Projections.Retention.RetentionOptions.AgainstEventLog"/>): checked at start with both settings named.</summary>
internal sealed class RetentionAgainstEventLog(IOptions<TopologyOptions> topology) : IValidateOptions<Projections.Retention.RetentionOptions>
{
    public ValidateOptionsResult Validate(string? name, Projections.Retention.RetentionOptions options) =>
        options.AgainstEventLog(topology.Value.EventsMaxAge) is { } problem ? ValidateOptionsResult.Fail(problem) : ValidateOptionsResult.Success;
}

/// <summary>A subsection that is a setting of its own, registered and checked apart from its parent (<c>Api:RateLimit</c> under <c>Api</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class CheckedApartAttribute : Attribute;

/// <summary>What is wrong with a bound section: keys its class does not have, and values outside their declared ranges, each named by its path.</summary>
internal sealed class SettingsValidator<T>(IConfigurationSection section, Func<T, string?>? rule) : IValidateOptions<T>
    where T : class
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var problems = Problems(section, options, rule);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public static List<string> Problems(IConfigurationSection section, T options, Func<T, string?>? rule)
    {
        var problems = new List<string>();
        Check(section, typeof(T), options, problems);
        if (rule?.Invoke(options) is { } broken)
        {
            problems.Add(broken);
        }

        return problems;
    }

    private static void Check(IConfigurationSection section, Type type, object? value, List<string> problems)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod?.IsPublic == true).ToList();
        foreach (var child in section.GetChildren())
        {
            var property = properties.Find(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                problems.Add($"{child.Path} is not a setting: {section.Path} has {string.Join(", ", properties.Select(p => p.Name))}.");
            }
            else if (property.GetCustomAttribute<CheckedApartAttribute>() is null)
            {
                CheckNested(child, property.PropertyType, value is null ? null : property.GetValue(value), problems);
            }
        }

        if (value is not null)
        {
            var results = new List<ValidationResult>();
            Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true);
            problems.AddRange(results.Select(r => Describe(section, type, value, r)));
        }
    }

    /// <summary>Settings classes nest (Processor:Scheduling), and sit in lists (Edge:Sites:0) and dictionaries (Api:RateLimit:Tenants:acme).</summary>
    private static void CheckNested(IConfigurationSection section, Type type, object? value, List<string> problems)
    {
        if (IsSettings(type))
        {
            Check(section, type, value, problems);
        }
        else if (ElementOf(type) is { } element && IsSettings(element))
        {
            var items = value as IEnumerable;
            foreach (var child in section.GetChildren())
            {
                Check(child, element, Item(items, child.Key), problems);
            }
        }
        else if (ElementOf(type) is { } scalar && value is IEnumerable items)
        {
            // The binder drops an item that does not convert without a word (Api:Quota:Tenants:acme = "lots"): name it.
            foreach (var child in section.GetChildren().Where(c => c.Value is not null && Item(items, c.Key) is null))
            {
                problems.Add($"{child.Path} is '{Commands.Shown.Cut(child.Value!, 64)}': not a value of type {scalar.Name}.");
            }
        }
    }

    private static bool IsSettings(Type type) => type.IsClass && type.Namespace?.StartsWith("CqrsInference", StringComparison.Ordinal) == true;

    private static Type? ElementOf(Type type) =>
        type.IsGenericType && type.GetGenericArguments() is var args && typeof(IEnumerable).IsAssignableFrom(type) ? args[^1] : null;

    private static object? Item(IEnumerable? items, string key) => items switch
    {
        IDictionary dictionary => dictionary.Contains(key) ? dictionary[key] : null,
        IList list when int.TryParse(key, CultureInfo.InvariantCulture, out var i) && i < list.Count => list[i],
        _ => null,
    };

    private static string Describe(IConfigurationSection section, Type type, object value, ValidationResult result)
    {
        var member = result.MemberNames.FirstOrDefault() ?? "";
        var property = type.GetProperty(member);
        var current = property?.GetValue(value);
        var message = result.ErrorMessage;
        if (property?.GetCustomAttribute<RangeAttribute>() is { } range && message == range.FormatErrorMessage(member)
            && range.Maximum is int or double && Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture) >= int.MaxValue)
        {
            // Range(1L, long.MaxValue) reads "between 1 and 9.223372036854776E+18": say what is meant.
            message = $"The field {member} must be at least {Convert.ToString(range.Minimum, CultureInfo.InvariantCulture)}.";
        }

        return $"{section.Path}:{member} is {current ?? "empty"}: {message}";
    }
}
