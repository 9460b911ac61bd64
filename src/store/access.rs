//! Who may read what: a package's access level, orgs with their members, teams with their
//! members and package grants.

use rusqlite::OptionalExtension;

use super::Db;
pub use crate::access::{
    OrgRecord, OrgRole, PackageRights, TeamPermission, TeamRecord, Visibility,
};
use crate::error::Result;

fn role_from_sql(index: usize, text: &str) -> rusqlite::Result<OrgRole> {
    OrgRole::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown org role {text:?}").into(),
        )
    })
}

/// A SQL condition that holds for the rows whose package (`id_column`, a package id) the
/// reader may see. Packages that are not local (no row in `packages`) are public. The ids are
/// integers of ours, so they are written into the text.
pub(super) fn visible_sql(visibility: &Visibility, id_column: &str) -> String {
    match visibility {
        Visibility::Everything => "1 = 1".to_string(),
        Visibility::PublicAnd(ids) if ids.is_empty() => {
            format!("{id_column} NOT IN (SELECT id FROM packages WHERE restricted = 1)")
        }
        Visibility::PublicAnd(ids) => {
            let mut list: Vec<i64> = ids.iter().copied().collect();
            list.sort_unstable();
            let list: Vec<String> = list.iter().map(i64::to_string).collect();
            format!(
                "{id_column} NOT IN (SELECT id FROM packages WHERE restricted = 1 \
                 AND id NOT IN ({}))",
                list.join(",")
            )
        }
    }
}

fn permission_of(writable: bool) -> TeamPermission {
    if writable {
        TeamPermission::ReadWrite
    } else {
        TeamPermission::ReadOnly
    }
}

impl Db<'_> {
    pub fn set_package_restricted(&self, package_id: i64, restricted: bool) -> Result<()> {
        self.execute(
            "UPDATE packages SET restricted = ?2 WHERE id = ?1",
            (package_id, restricted),
        )?;
        Ok(())
    }

    /// What `user_id` holds on a package, in one statement: maintainership, the best team
    /// grant, and the role in the org that owns the package's scope (`org` is that scope).
    pub fn package_rights(
        &self,
        package_id: i64,
        org: Option<&str>,
        user_id: i64,
    ) -> Result<PackageRights> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT \
               EXISTS (SELECT 1 FROM maintainers WHERE package_id = ?1 AND user_id = ?2), \
               (SELECT max(tp.writable) FROM team_packages tp \
                  JOIN team_members tm ON tm.team_id = tp.team_id \
                  WHERE tp.package_id = ?1 AND tm.user_id = ?2), \
               (SELECT om.role FROM orgs o JOIN org_members om ON om.org_id = o.id \
                  WHERE o.name = ?3 AND om.user_id = ?2)",
        )?;
        Ok(stmt.query_row((package_id, user_id, org), |row| {
            let team: Option<bool> = row.get(1)?;
            let role: Option<String> = row.get(2)?;
            Ok(PackageRights {
                maintainer: row.get(0)?,
                team: team.map(permission_of),
                org_role: role.as_deref().map(|r| role_from_sql(2, r)).transpose()?,
            })
        })?)
    }

    /// The restricted packages `user_id` may read (and their names): maintained, granted to
    /// one of their teams, or in the scope of an org they own or administer.
    pub fn readable_restricted(&self, user_id: i64) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.name FROM packages p WHERE p.restricted = 1 AND ( \
               p.id IN (SELECT package_id FROM maintainers WHERE user_id = ?1) \
               OR p.id IN (SELECT tp.package_id FROM team_packages tp \
                   JOIN team_members tm ON tm.team_id = tp.team_id WHERE tm.user_id = ?1) \
               OR EXISTS (SELECT 1 FROM orgs o JOIN org_members om ON om.org_id = o.id \
                   WHERE om.user_id = ?1 AND om.role IN ('owner', 'admin') \
                     AND substr(p.name, 1, length(o.name) + 2) = '@' || o.name || '/'))",
        )?;
        let rows = stmt.query_map([user_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every restricted package: `(id, name)`.
    pub fn restricted_packages(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM packages WHERE restricted = 1")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn org_by_name(&self, name: &str) -> Result<Option<OrgRecord>> {
        Ok(self
            .query_row(
                "SELECT id, name, created_at, \
                   (SELECT count(*) FROM org_members m WHERE m.org_id = orgs.id) \
                 FROM orgs WHERE name = ?1",
                [name],
                |row| {
                    Ok(OrgRecord {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_at: row.get(2)?,
                        members: row.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )
            .optional()?)
    }

    pub fn orgs(&self) -> Result<Vec<OrgRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, created_at, \
               (SELECT count(*) FROM org_members m WHERE m.org_id = orgs.id) \
             FROM orgs ORDER BY name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(OrgRecord {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
                members: row.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_org(&self, name: &str, now: &str) -> Result<i64> {
        Ok(self.insert_returning(
            "INSERT INTO orgs (name, created_at) VALUES (?1, ?2) RETURNING id",
            (name, now),
        )?)
    }

    /// Every member of the org with their role, by name.
    pub fn org_members(&self, org_id: i64) -> Result<Vec<(String, OrgRole)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name, m.role FROM org_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = ?1 ORDER BY u.name",
        )?;
        let rows = stmt.query_map([org_id], |row| {
            let role: String = row.get(1)?;
            Ok((row.get(0)?, role_from_sql(1, &role)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn org_role(&self, org_id: i64, user_id: i64) -> Result<Option<OrgRole>> {
        let role: Option<String> = self
            .query_row(
                "SELECT role FROM org_members WHERE org_id = ?1 AND user_id = ?2",
                (org_id, user_id),
                |row| row.get(0),
            )
            .optional()?;
        Ok(role.as_deref().map(|r| role_from_sql(0, r)).transpose()?)
    }

    pub fn set_org_member(&self, org_id: i64, user_id: i64, role: OrgRole) -> Result<()> {
        self.execute(
            "INSERT INTO org_members (org_id, user_id, role) VALUES (?1, ?2, ?3) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
            (org_id, user_id, role.as_str()),
        )?;
        Ok(())
    }

    /// Removes the user from the org and from every team of it; false if not a member.
    pub fn remove_org_member(&self, org_id: i64, user_id: i64) -> Result<bool> {
        self.execute(
            "DELETE FROM team_members WHERE user_id = ?2 \
               AND team_id IN (SELECT id FROM teams WHERE org_id = ?1)",
            (org_id, user_id),
        )?;
        Ok(self.execute(
            "DELETE FROM org_members WHERE org_id = ?1 AND user_id = ?2",
            (org_id, user_id),
        )? > 0)
    }

    pub fn count_org_owners(&self, org_id: i64) -> Result<u64> {
        let owners: i64 = self.query_row(
            "SELECT count(*) FROM org_members WHERE org_id = ?1 AND role = 'owner'",
            [org_id],
            |row| row.get(0),
        )?;
        Ok(owners.max(0) as u64)
    }

    pub fn team_by_name(&self, org_id: i64, name: &str) -> Result<Option<TeamRecord>> {
        Ok(self
            .query_row(
                "SELECT id, org_id, name, description, created_at FROM teams \
                 WHERE org_id = ?1 AND name = ?2",
                (org_id, name),
                |row| {
                    Ok(TeamRecord {
                        id: row.get(0)?,
                        org_id: row.get(1)?,
                        name: row.get(2)?,
                        description: row.get(3)?,
                        created_at: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn insert_team(
        &self,
        org_id: i64,
        name: &str,
        description: &str,
        now: &str,
    ) -> Result<i64> {
        Ok(self.insert_returning(
            "INSERT INTO teams (org_id, name, description, created_at) \
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
            (org_id, name, description, now),
        )?)
    }

    pub fn delete_team(&self, team_id: i64) -> Result<()> {
        self.execute("DELETE FROM team_packages WHERE team_id = ?1", [team_id])?;
        self.execute("DELETE FROM team_members WHERE team_id = ?1", [team_id])?;
        self.execute("DELETE FROM teams WHERE id = ?1", [team_id])?;
        Ok(())
    }

    /// The org's team names, sorted.
    pub fn teams(&self, org_id: i64) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM teams WHERE org_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([org_id], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The team's members' names, sorted.
    pub fn team_members(&self, team_id: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name FROM team_members m JOIN users u ON u.id = m.user_id \
             WHERE m.team_id = ?1 ORDER BY u.name",
        )?;
        let rows = stmt.query_map([team_id], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// False when the user already was a member.
    pub fn add_team_member(&self, team_id: i64, user_id: i64) -> Result<bool> {
        Ok(self.execute(
            "INSERT OR IGNORE INTO team_members (team_id, user_id) VALUES (?1, ?2)",
            (team_id, user_id),
        )? > 0)
    }

    /// False when the user was not a member.
    pub fn remove_team_member(&self, team_id: i64, user_id: i64) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2",
            (team_id, user_id),
        )? > 0)
    }

    pub fn grant_team(
        &self,
        team_id: i64,
        package_id: i64,
        permission: TeamPermission,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO team_packages (team_id, package_id, writable) VALUES (?1, ?2, ?3) \
             ON CONFLICT (team_id, package_id) DO UPDATE SET writable = excluded.writable",
            (team_id, package_id, permission == TeamPermission::ReadWrite),
        )?;
        Ok(())
    }

    /// False when the team had no grant on the package.
    pub fn revoke_team(&self, team_id: i64, package_id: i64) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM team_packages WHERE team_id = ?1 AND package_id = ?2",
            (team_id, package_id),
        )? > 0)
    }

    /// The packages granted to a team: `(package id, name, restricted, permission)`.
    pub fn team_packages(&self, team_id: i64) -> Result<Vec<(i64, String, bool, TeamPermission)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.name, p.restricted, tp.writable FROM team_packages tp \
             JOIN packages p ON p.id = tp.package_id \
             WHERE tp.team_id = ?1 AND p.unpublished_at IS NULL ORDER BY p.name",
        )?;
        let rows = stmt.query_map([team_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                permission_of(row.get(3)?),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The live packages in `@scope/`: `(id, name, restricted)`.
    pub fn scope_packages(&self, scope: &str) -> Result<Vec<(i64, String, bool)>> {
        let prefix = format!("@{scope}/");
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, restricted FROM packages \
             WHERE substr(name, 1, length(?1)) = ?1 AND unpublished_at IS NULL ORDER BY name",
        )?;
        let rows = stmt.query_map([prefix], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The live packages a user maintains or has through a team: `(id, name, restricted,
    /// best permission)`.
    pub fn user_packages(&self, user_id: i64) -> Result<Vec<(i64, String, bool, TeamPermission)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.name, p.restricted, max(g.writable) FROM ( \
               SELECT package_id, 1 AS writable FROM maintainers WHERE user_id = ?1 \
               UNION ALL \
               SELECT tp.package_id, tp.writable FROM team_packages tp \
                 JOIN team_members tm ON tm.team_id = tp.team_id WHERE tm.user_id = ?1 \
             ) g JOIN packages p ON p.id = g.package_id \
             WHERE p.unpublished_at IS NULL GROUP BY p.id ORDER BY p.name",
        )?;
        let rows = stmt.query_map([user_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                permission_of(row.get(3)?),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Who may use a package and how: its maintainers (read-write) and the members of teams
    /// granted it, each with their best permission, by name.
    pub fn collaborators(&self, package_id: i64) -> Result<Vec<(String, TeamPermission)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name, max(g.writable) FROM ( \
               SELECT user_id, 1 AS writable FROM maintainers WHERE package_id = ?1 \
               UNION ALL \
               SELECT tm.user_id, tp.writable FROM team_packages tp \
                 JOIN team_members tm ON tm.team_id = tp.team_id WHERE tp.package_id = ?1 \
             ) g JOIN users u ON u.id = g.user_id GROUP BY u.id ORDER BY u.name",
        )?;
        let rows = stmt.query_map([package_id], |row| {
            Ok((row.get(0)?, permission_of(row.get(1)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_as_sql() {
        assert_eq!(visible_sql(&Visibility::Everything, "p.id"), "1 = 1");
        assert_eq!(
            visible_sql(&Visibility::default(), "p.id"),
            "p.id NOT IN (SELECT id FROM packages WHERE restricted = 1)"
        );
        let some = Visibility::PublicAnd([3, 1].into_iter().collect());
        assert_eq!(
            visible_sql(&some, "d.package_id"),
            "d.package_id NOT IN (SELECT id FROM packages WHERE restricted = 1 AND id NOT IN (1,3))"
        );
    }
}
