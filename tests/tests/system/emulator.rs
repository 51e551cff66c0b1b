//! The emulator answers like DynamoDB where the money path depends on it: transactions are
//! isolated. 40 checkouts at once each take one unit of 20 in a transaction (the stock's
//! condition and the reservation's record): exactly 20 go through, each with its record,
//! and the stock ends at 0. moto alone failed this (a failed transaction put back its copy
//! of the table, undoing the others: two customers both bought the last unit);
//! infra/scripts/moto_server.py isolates its DynamoDB operations.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem, Update,
};
use futures_util::future::join_all;

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([("pk".to_owned(), AttributeValue::S(pk.to_owned()))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transactions_for_the_last_units_are_isolated() {
    let dynamo = aws_sdk_dynamodb::Client::new(&system_tests::emulator().await);
    let table = format!("isolation-{}", ulid::Ulid::generate().to_string().to_lowercase());
    dynamo
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("table");
    // Other items beside the product, as in a shop's table (moto copies the whole table).
    for batch in 0..12 {
        let puts = (0..25).map(|i| {
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(key(&format!("OTHER#{batch}-{i}"))))
                .build()
                .unwrap();
            aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build()
        });
        dynamo.batch_write_item().request_items(&table, puts.collect()).send().await.unwrap();
    }
    let mut stock = key("PRODUCT");
    stock.insert("stock".into(), AttributeValue::N("20".into()));
    dynamo.put_item().table_name(&table).set_item(Some(stock)).send().await.unwrap();

    let take = |i: usize| {
        let (dynamo, table) = (dynamo.clone(), table.clone());
        async move {
            let update = Update::builder()
                .table_name(&table)
                .set_key(Some(key("PRODUCT")))
                .update_expression("SET stock = stock - :one")
                .condition_expression("stock >= :one")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .build()
                .unwrap();
            let record = Put::builder()
                .table_name(&table)
                .set_item(Some(key(&format!("RESERVATION#{i}"))))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap();
            dynamo
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update).build())
                .transact_items(TransactWriteItem::builder().put(record).build())
                .send()
                .await
                .is_ok()
        }
    };
    let took = join_all((0..40).map(take)).await.into_iter().filter(|ok| *ok).count();

    let left = dynamo.get_item().table_name(&table).set_key(Some(key("PRODUCT"))).consistent_read(true).send().await;
    let left = left.unwrap().item.unwrap()["stock"].as_n().unwrap().parse::<i64>().unwrap();
    let scan = dynamo.scan().table_name(&table).filter_expression("begins_with(pk, :r)");
    let scan = scan.expression_attribute_values(":r", AttributeValue::S("RESERVATION#".into()));
    let records = scan.send().await.unwrap().count;
    assert_eq!((took, records, left), (20, 20, 0), "(transactions that went through, reservations, stock left)");
}
