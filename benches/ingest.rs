//! `cargo bench --bench ingest`: the ingest pipeline beside the raw ed25519 rates (one core and
//! all cores), as `kith bench ingest` measures them, at a few sizes.

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return eprintln!("no runtime: {e}"),
    };
    for entries in [10_000, 100_000] {
        match runtime.block_on(kith::bench::ingest::run(entries)) {
            Ok(r) => println!(
                "ingest {entries:>7}: {:>8.0}/s | raw verify_strict {:>8.0}/s, verify_batch {:>8.0}/s one core, {:>8.0}/s all cores | {:.0}% of one core, {:.0}% of all",
                r.ingest_per_s,
                r.verify_single_per_s,
                r.verify_batch_per_s,
                r.verify_batch_all_cores_per_s,
                r.ingest_vs_verify_one_core * 100.0,
                r.ingest_vs_verify_all_cores * 100.0
            ),
            Err(e) => eprintln!("ingest {entries}: {e}"),
        }
    }
}
