//! Prints the id, version and hash of the consent document in force.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let doc = mynacard_registration::consent::current();
    let r = doc.reference()?;
    println!("{} {} {}", r.doc_id, r.version, r.sha256);
    println!("{}", r.sha256.to_hex());
    Ok(())
}
