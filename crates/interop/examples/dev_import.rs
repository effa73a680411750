fn main() {
    let a: Vec<String> = std::env::args().collect();
    let t = std::time::Instant::now();
    match rewarm_interop::import_gguf(a[1].as_ref(), a[2].as_ref()) {
        Ok(s) => println!(
            "{:?} {:?} {} {:?} {:?} in {:?}",
            s.shape,
            s.types,
            s.params,
            s.notes,
            s.tokenizer,
            t.elapsed()
        ),
        Err(e) => println!("error: {e}"),
    }
}
